// Fire logic of one lane (combinational): integrate the constant current
// (bias, plus the analog input current on the first layer), saturate to the
// signed VB-bit membrane range, compare with the threshold, reset.
//   s     = sat_VB(v + bias + (use_i0 ? i0 : 0))
//   spike = !is_last && s >= thr
//   v'    = spike ? (reset_zero ? 0 : s - thr) : s
module snn_fire_unit #(
    parameter VB = 20,  // membrane (saturation) bits
    parameter AB = 28   // stored accumulator bits (AB > VB)
) (
    input  wire [AB-1:0] v,
    input  wire [AB-1:0] i0,
    input  wire [AB-1:0] bias,
    input  wire          use_i0,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [31:0]   thr,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire          reset_zero,
    input  wire          is_last,
    output wire [AB-1:0] v_next,
    output wire          spike
);
    localparam SW = AB + 2;
    wire signed [SW-1:0] hi = {{(SW-VB+1){1'b0}}, {(VB-1){1'b1}}};
    wire signed [SW-1:0] lo = -hi - 1;
    wire signed [SW-1:0] sv = {{2{v[AB-1]}}, v};
    wire signed [SW-1:0] sb = {{2{bias[AB-1]}}, bias};
    wire signed [SW-1:0] si = use_i0 ? {{2{i0[AB-1]}}, i0} : {SW{1'b0}};
    wire signed [SW-1:0] sum = sv + sb + si;
    wire signed [SW-1:0] sat = (sum > hi) ? hi : ((sum < lo) ? lo : sum);
    wire signed [SW-1:0] st = {{(SW-VB){1'b0}}, thr[VB-1:0]};
    assign spike = !is_last && (sat >= st);
    /* verilator lint_off UNUSEDSIGNAL */
    wire signed [SW-1:0] nxt = spike ? (reset_zero ? {SW{1'b0}} : sat - st) : sat;
    /* verilator lint_on UNUSEDSIGNAL */
    assign v_next = nxt[AB-1:0];
endmodule
