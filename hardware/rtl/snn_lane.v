// One synaptic lane, first pipeline stage: decodes a compressed weight entry
// {w, toff, dy, dx} against the current event and yields the target neuron's
// bank address, the in-bounds flag and the product w * payload.
//   target = vbase + toff + pp; valid when w != 0 and the footprint position
//   (py + dy, px + dx) lies in_plane_ok the oh x ow output plane.
// Zero entries are padding of the compressed storage and never count as ops.
module snn_lane #(
    parameter WB = 8,   // weight bits
    parameter NA = 12,  // bank address bits
    parameter YB = 8,   // coordinate bits
    parameter DB = 5,   // footprint offset bits (signed)
    parameter PROD = 17 // product width (WB + 9)
) (
    input  wire [WB+NA+1+2*DB-1:0] entry,  // {w, toff, dy, dx}
    input  wire [15:0]             vbase,
    input  wire [15:0]             pp,
    input  wire [YB-1:0]           py,
    input  wire [YB-1:0]           px,
    input  wire [YB-1:0]           oh,
    input  wire [YB-1:0]           ow,
    input  wire [7:0]              payload,
    output wire [NA-1:0]           target,
    output wire                    valid,
    output wire [PROD-1:0]         product
);
    wire signed [WB-1:0] w    = entry[WB+NA+1+2*DB-1:NA+1+2*DB];
    wire signed [NA:0]   toff = entry[NA+1+2*DB-1:2*DB];
    wire signed [DB-1:0] dy   = entry[2*DB-1:DB];
    wire signed [DB-1:0] dx   = entry[DB-1:0];

    wire signed [YB+1:0] oy = $signed({2'b00, py}) + {{(YB+2-DB){dy[DB-1]}}, dy};
    wire signed [YB+1:0] ox = $signed({2'b00, px}) + {{(YB+2-DB){dx[DB-1]}}, dx};
    wire in_plane_ok = !oy[YB+1] && !ox[YB+1] && (oy[YB:0] < {1'b0, oh}) && (ox[YB:0] < {1'b0, ow});

    /* verilator lint_off UNUSEDSIGNAL */
    wire signed [17:0] sum = $signed({2'b00, vbase}) + $signed({2'b00, pp}) + {{(18-NA-1){toff[NA]}}, toff};
    /* verilator lint_on UNUSEDSIGNAL */
    assign target = sum[NA-1:0];
    assign valid = (w != {WB{1'b0}}) && in_plane_ok;

    wire signed [8:0] pay = $signed({1'b0, payload});
    wire signed [WB+8:0] prod_full = w * pay;
    assign product = prod_full[PROD-1:0];
endmodule
