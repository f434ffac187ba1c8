// Unit-test top: the combinational blocks side by side with small parameters (so the
// fire unit saturates often) plus one SRAM, each with its own ports for cocotb.
`timescale 1ns/1ps
module snn_units_tb ();
    // fire unit: VB = 8, AB = 12
    reg  [11:0] f_v = 0, f_i0 = 0, f_bias = 0;
    reg         f_use_i0 = 0, f_reset_zero = 0, f_is_last = 0;
    reg  [31:0] f_thr = 1;
    wire [11:0] f_v_next;
    wire        f_spike;
    snn_fire_unit #(.VB(8), .AB(12)) u_fire (
        .v(f_v), .i0(f_i0), .bias(f_bias), .use_i0(f_use_i0), .thr(f_thr), .reset_zero(f_reset_zero),
        .is_last(f_is_last), .v_next(f_v_next), .spike(f_spike));

    // lane: WB = 6, NA = 8, DB = 5  (entry = 6 + 9 + 10 = 25 bits)
    reg  [24:0] l_entry = 0;
    reg  [15:0] l_vbase = 0, l_pp = 0;
    reg  [7:0]  l_py = 0, l_px = 0, l_oh = 1, l_ow = 1, l_payload = 0;
    wire [7:0]  l_target;
    wire        l_valid;
    wire [14:0] l_product;
    snn_lane #(.WB(6), .NA(8), .YB(8), .DB(5), .PROD(15)) u_lane (
        .entry(l_entry), .vbase(l_vbase), .pp(l_pp), .py(l_py), .px(l_px), .oh(l_oh), .ow(l_ow),
        .payload(l_payload), .target(l_target), .valid(l_valid), .product(l_product));

    // event decoder: KB = 16, PB = 16
    reg  [25:0] d_event = 0;
    reg  [1:0]  d_ps = 0;
    reg         d_is_fc = 0;
    reg  [15:0] d_in_plane = 0;
    reg  [7:0]  d_in_w = 0, d_ow = 0;
    wire [15:0] d_key, d_pp;
    wire [7:0]  d_py, d_px;
    snn_event_decode #(.CB(10), .YB(8), .KB(16), .PB(16)) u_decode (
        .event_word(d_event), .ps(d_ps), .is_fc(d_is_fc), .in_plane(d_in_plane), .in_w(d_in_w), .ow(d_ow),
        .key(d_key), .pp(d_pp), .py(d_py), .px(d_px));

    // SRAM: 16 x 8
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg        s_re = 0, s_we = 0;
    reg  [3:0] s_raddr = 0, s_waddr = 0;
    reg  [7:0] s_wdata = 0;
    wire [7:0] s_rdata;
    snn_sram #(.W(8), .A(4)) u_sram (
        .clk(clk), .re(s_re), .raddr(s_raddr), .rdata(s_rdata), .we(s_we), .waddr(s_waddr), .wdata(s_wdata));
endmodule
