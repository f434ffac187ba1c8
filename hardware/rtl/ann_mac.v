// One MAC lane of the output-stationary ANN array (ann_mac_array): it owns one output
// channel's accumulator for the output pixel in flight and the 2x2 pool sum of that channel.
// Zero gating (Eyeriss, Chen et al. JSSC 2017): when `en` is low the accumulator is not
// written, and the operands arrive from registers the core holds still, so a skipped MAC
// toggles nothing in the lane.
module ann_mac #(
    parameter XB = 8,   // unsigned activation bits
    parameter WB = 8,   // signed weight bits
    parameter AB = 32,  // accumulator bits (signed)
    parameter PB = 34   // pool-sum bits (signed): AB + 2 for four pooled outputs
) (
    input  wire                 clk,
    input  wire                 rst_n,
    input  wire                 load_bias,  // acc <= bias (start of an output pixel)
    input  wire [AB-1:0]        bias,
    input  wire                 en,         // acc <= acc + x * w (a non-zero activation)
    input  wire [XB-1:0]        x,
    input  wire [WB-1:0]        w,
    input  wire                 pool_add,   // pool <= (pool_first ? 0 : pool) + f(acc)
    input  wire                 pool_first,
    input  wire                 relu,       // f = ReLU, else identity (output layer)
    output reg  [AB-1:0]        acc,
    output reg  [PB-1:0]        pool
);
    wire signed [XB:0]      x_s = {1'b0, x};
    wire signed [XB+WB:0]   product = x_s * $signed(w);
    wire signed [AB-1:0]    acc_s = acc;
    wire signed [PB-1:0]    acc_ext = {{(PB - AB){acc[AB-1]}}, acc};
    wire signed [PB-1:0]    f_acc = (relu && acc_s < 0) ? {PB{1'b0}} : acc_ext;

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            acc  <= {AB{1'b0}};
            pool <= {PB{1'b0}};
        end else begin
            if (load_bias)
                acc <= bias;
            else if (en)
                acc <= acc + {{(AB - XB - WB - 1){product[XB+WB]}}, product};
            if (pool_add)
                pool <= (pool_first ? {PB{1'b0}} : pool) + f_acc;
        end
    end
endmodule
