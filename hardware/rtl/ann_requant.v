// Output-path requantisation of one pool sum v (ReLU already applied in the lane):
//   y = clip((v * M + 2^(S-1)) >>> S, 0, 2^XB - 1)      (hardware/ann/quantise.py)
// Combinational; the core registers its input and writes its output to the activation SRAM.
module ann_requant #(
    parameter PB = 34,  // pool-sum bits (signed)
    parameter MB = 16,  // multiplier bits (unsigned)
    parameter SB = 6,   // shift bits
    parameter XB = 8    // output activation bits (unsigned)
) (
    input  wire [PB-1:0] v,
    input  wire [MB-1:0] mult,
    input  wire [SB-1:0] shift,
    output wire [XB-1:0] y
);
    localparam QB = PB + MB + 1;
    wire signed [QB-1:0] product = $signed(v) * $signed({1'b0, mult});
    wire signed [QB-1:0] half = (shift == {SB{1'b0}}) ? {QB{1'b0}} : ({{(QB - 1){1'b0}}, 1'b1} <<< (shift - 1'b1));
    wire signed [QB-1:0] scaled = (product + half) >>> shift;
    wire signed [QB-1:0] top = (1 << XB) - 1;
    assign y = (scaled < 0) ? {XB{1'b0}} : (scaled > top) ? {XB{1'b1}} : scaled[XB-1:0];
endmodule
