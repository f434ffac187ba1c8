// Input address generation of the MAC loop (combinational). For the k-th input of an output
// pixel (oy, ox): conv k = (c, ky, kx), input (c, oy + ky - pad, ox + kx - pad), in bounds
// or zero padding (no read, a skipped MAC); fc k = input index. Activations are stored
// channel-major, address = base + c*H*W + y*W + x (= torch's flatten order, so an fc layer
// reads a conv layer's output as it lies).
module ann_agu #(
    parameter AA = 14,  // activation address bits
    parameter CB = 12   // coordinate bits (maps up to 2^CB - 1 wide)
) (
    input  wire          is_fc,
    input  wire [AA-1:0] base,        // first word of the layer's input
    input  wire [AA-1:0] c_base,      // c * H * W, kept by the core as a running sum
    input  wire [AA-1:0] k_index,     // fc: input index
    input  wire [CB-1:0] oy, ox,      // output pixel
    input  wire [CB-1:0] ky, kx,      // kernel position
    input  wire [CB-1:0] pad,         // ks / 2
    input  wire [CB-1:0] in_h, in_w,
    output wire [AA-1:0] addr,
    output wire          in_bounds
);
    wire signed [CB+1:0] iy = $signed({2'b00, oy}) + $signed({2'b00, ky}) - $signed({2'b00, pad});
    wire signed [CB+1:0] ix = $signed({2'b00, ox}) + $signed({2'b00, kx}) - $signed({2'b00, pad});
    wire                 in_map = (iy >= 0) && (ix >= 0) && (iy < $signed({2'b00, in_h})) && (ix < $signed({2'b00, in_w}));
    // widened before the cut so any AA works; used only when in bounds, i.e. non-negative
    /* verilator lint_off UNUSEDSIGNAL */
    wire [AA+CB+1:0]     iy_w = {{AA{iy[CB+1]}}, iy};
    wire [AA+CB+1:0]     ix_w = {{AA{ix[CB+1]}}, ix};
    /* verilator lint_on UNUSEDSIGNAL */
    wire [AA-1:0]        iy_a = iy_w[AA-1:0];
    wire [AA-1:0]        ix_a = ix_w[AA-1:0];
    wire [AA-1:0]        conv_addr = base + c_base + iy_a * in_w + ix_a;
    assign addr      = is_fc ? base + k_index : conv_addr;
    assign in_bounds = is_fc | in_map;
endmodule
