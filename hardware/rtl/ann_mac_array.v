// N MAC lanes sharing one broadcast activation (output-stationary: lane n accumulates
// output channel tile*N + n of the current output pixel), each with its own weight from
// one N-wide weight row. Lanes at or above `lanes_valid` (the last tile's padding) are
// never enabled. `sel` picks the pool sum the drain reads (one lane per cycle).
module ann_mac_array #(
    parameter N  = 64,
    parameter XB = 8,
    parameter WB = 8,
    parameter AB = 32,
    parameter PB = 34,
    parameter NB = 7    // bits of a lane count 0..N
) (
    input  wire              clk,
    input  wire              rst_n,
    input  wire [NB-1:0]     lanes_valid,
    input  wire              load_bias,
    input  wire [N*AB-1:0]   bias_row,
    input  wire              en,
    input  wire [XB-1:0]     x,
    input  wire [N*WB-1:0]   weight_row,
    input  wire              pool_add,
    input  wire              pool_first,
    input  wire              relu,
    input  wire [NB-1:0]     sel,
    output wire [PB-1:0]     pool_sel
);
    wire [N*PB-1:0] pools;
    wire [N*AB-1:0] accs;

    genvar n;
    generate
        for (n = 0; n < N; n = n + 1) begin : gen_lane
            ann_mac #(.XB(XB), .WB(WB), .AB(AB), .PB(PB)) u_mac (
                .clk(clk), .rst_n(rst_n),
                .load_bias(load_bias), .bias(bias_row[n*AB +: AB]),
                .en(en && (n < lanes_valid)), .x(x), .w(weight_row[n*WB +: WB]),
                .pool_add(pool_add), .pool_first(pool_first), .relu(relu),
                .acc(accs[n*AB +: AB]), .pool(pools[n*PB +: PB]));
        end
    endgenerate

    assign pool_sel = pools[sel*PB +: PB];

`ifndef SYNTHESIS
    // Simulation only: bit flips of all accumulators, to show that zero gating saves toggles.
    reg [63:0]     acc_toggles = 64'd0;
    reg [N*AB-1:0] accs_prev = {N*AB{1'b0}};
    always @(posedge clk) begin
        accs_prev   <= accs;
        acc_toggles <= acc_toggles + 64'($countones(accs ^ accs_prev));  // SystemVerilog cast: Verilator only
    end
`endif
endmodule
