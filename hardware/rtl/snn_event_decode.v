// Address generation for one AER event {c, y, x} entering a layer.
// The average pool in front of the layer is folded in: pooled coordinates are
// the event coordinates shifted right by `ps` (pool kernel 2**ps); the integer
// weights stay unscaled and the exporter multiplies threshold and bias by the
// pool area instead.
//   conv layer: key = c (selects the channel's compressed kernel list),
//               pp  = py * ow + px (output-plane offset of the footprint centre)
//   fc layer:   key = c * in_plane + py * in_w + px (flattened input index), pp = 0
module snn_event_decode #(
    parameter CB = 10,  // channel bits
    parameter YB = 8,   // row / column bits
    parameter KB = 16,  // key bits
    parameter PB = 16   // pp bits
) (
    input  wire [CB+2*YB-1:0] event_word,  // {c, y, x}
    input  wire [1:0]         ps,
    input  wire               is_fc,
    input  wire [15:0]        in_plane,
    input  wire [YB-1:0]      in_w,
    input  wire [YB-1:0]      ow,
    output wire [KB-1:0]      key,
    output wire [PB-1:0]      pp,
    output wire [YB-1:0]      py,
    output wire [YB-1:0]      px
);
    wire [CB-1:0] c = event_word[CB+2*YB-1:2*YB];
    wire [YB-1:0] y = event_word[2*YB-1:YB];
    wire [YB-1:0] x = event_word[YB-1:0];
    wire [YB-1:0] pool_y = y >> ps;
    wire [YB-1:0] pool_x = x >> ps;

    wire [CB+15:0]   flat_c = c * in_plane;
    wire [2*YB-1:0]  flat_y = pool_y * in_w;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [CB+16:0]   fc_key = {1'b0, flat_c} + {{(CB+1){1'b0}}, flat_y} + {{(CB+17-YB){1'b0}}, pool_x};
    /* verilator lint_on UNUSEDSIGNAL */
    wire [2*YB-1:0]  conv_row = pool_y * ow;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [2*YB:0]    conv_pp = {1'b0, conv_row} + {{(YB+1){1'b0}}, pool_x};
    /* verilator lint_on UNUSEDSIGNAL */

    /* verilator lint_off UNUSEDSIGNAL */
    wire [CB+16:0]   key_wide = is_fc ? fc_key : {17'd0, c};
    /* verilator lint_on UNUSEDSIGNAL */
    assign key = key_wide[KB-1:0];
    assign pp  = is_fc ? {PB{1'b0}} : conv_pp[PB-1:0];
    assign py  = is_fc ? {YB{1'b0}} : pool_y;
    assign px  = is_fc ? {YB{1'b0}} : pool_x;
endmodule
