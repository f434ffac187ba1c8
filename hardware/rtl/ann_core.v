// Output-stationary MAC-array ANN accelerator (the ANN beside the SNN core, same flow).
// Layer-serial: for each layer (one descriptor word), each tile of N output channels, each
// output group (a pooled pixel = 4 conv pixels, a conv pixel, or the fc layer's neurons):
//   BIAS   read the tile's bias row, acc[n] = bias (every lane)
//   MAC    K = cin*ks*ks (fc: cin) slots, one per cycle, in a 3-stage pipeline:
//          issue the input-activation read (skipped for padding: ann_agu) -> the activation
//          arrives: non-zero ones read the N-wide weight row and latch the operand, zero ones
//          read nothing and hold every operand (zero gating) -> the N lanes accumulate
//   POOL   pool[n] += ReLU(acc[n]) (first sub-pixel: =); 4 sub-pixels for a 2x2 pool
//   DRAIN  lanes_valid + 1 cycles: one lane's pool sum per cycle through the requantiser
//          (ann_requant) into the activation SRAM (output layer: the raw sums into u_out)
// Counters: cycle_count (busy cycles), mac_issued / mac_skipped (lane-MACs with a non-zero /
// a zero or padding activation; their sum is the dense MAC count).
// Memories (all snn_sram): u_desc descriptors, u_act activations of every layer (host-written
// input at its base), u_wmem N-wide weight rows, u_bias N-wide bias rows, u_out the logits.
// Descriptor word: NF fields of DF bits, field i at [i*DF +: DF], in the order of
// hardware/ann/export.py DESC_FIELDS.
module ann_core #(
    parameter N  = 64,  // MAC lanes
    parameter WB = 5,   // weight bits (signed)
    parameter XB = 8,   // activation bits (unsigned)
    parameter AB = 32,  // accumulator bits
    parameter MB = 16,  // requantisation multiplier bits
    parameter AA = 14,  // activation address bits
    parameter WA = 13,  // weight-row address bits
    parameter BA = 7,   // bias-row address bits
    parameter OA = 4,   // output (logit) address bits
    parameter LA = 3,   // layer address bits
    parameter PB = AB + 2
) (
    input  wire              clk,
    input  wire              rst_n,
    input  wire              start,
    output wire              busy,
    output reg               done,
    input  wire [LA:0]       cfg_layers,
    input  wire              in_we,      // host: input activations, while idle
    input  wire [AA-1:0]     in_addr,
    input  wire [XB-1:0]     in_wdata,
    input  wire              rd_en,      // host: logits, while idle
    input  wire [OA-1:0]     rd_addr,
    output wire [PB-1:0]     rd_data,
    output reg  [31:0]       cycle_count,
    output reg  [47:0]       mac_issued,
    output reg  [47:0]       mac_skipped
);
    localparam DF = 24, NF = 16, DW = DF * NF, SB = 6, CB = 12;
    localparam NB = $clog2(N + 1);
    localparam [DF-1:0] LANES = N[DF-1:0];  // N at the loop counters' width
    localparam [3:0] S_IDLE = 4'd0, S_DESC = 4'd1, S_DESC_WAIT = 4'd2, S_BIAS = 4'd3, S_BIAS_WAIT = 4'd4,
                     S_MAC = 4'd5, S_FLUSH = 4'd6, S_POOL = 4'd7, S_DRAIN = 4'd8, S_NEXT = 4'd9, S_DONE = 4'd10;

    reg [3:0]    state;
    reg [LA-1:0] layer;
    // descriptor of the current layer
    reg          is_fc, relu, pool2, last;
    reg [CB-1:0] ks, in_h, in_w, out_h, out_w;
    reg [DF-1:0] k_len, tiles;
    reg [AA-1:0] in_base, out_base, in_plane, out_plane;
    reg [BA-1:0] b_base;
    reg [MB-1:0] mult;
    reg [SB-1:0] shift;
    // loop state
    reg [DF-1:0] tile, kidx, oc_base, remaining;
    reg [CB-1:0] gy, gx, ky, kx;
    reg [1:0]    sub;
    reg [AA-1:0] c_base;
    reg [WA-1:0] wrow_base;
    reg          flush;
    reg [NB-1:0] dn;
    wire [NB-1:0] lanes_valid = (remaining > LANES) ? LANES[NB-1:0] : remaining[NB-1:0];
    wire [CB-1:0] oy = pool2 ? {gy[CB-2:0], sub[1]} : gy;
    wire [CB-1:0] ox = pool2 ? {gx[CB-2:0], sub[0]} : gx;
    wire          k_last = (kidx == k_len - 1'b1);

    assign busy = (state != S_IDLE);

    // ---- memories ----
    /* verilator lint_off UNUSEDSIGNAL */
    wire [DW-1:0]   desc_rdata;  // fields use only their low bits
    /* verilator lint_on UNUSEDSIGNAL */
    wire [XB-1:0]   act_rdata;
    wire [N*WB-1:0] w_rdata;
    wire [N*AB-1:0] bias_rdata;
    wire [PB-1:0]   out_rdata;
    wire [AA-1:0]   act_raddr;
    wire            in_bounds;
    // pipeline: stage 1 = activation read returned, stage 2 = operands ready
    reg             v1, inb1, v2, nz2;
    reg [WA-1:0]    k1;  // slot index of stage 1 (weight row offset)
    reg [XB-1:0]    x2;
    wire            nz1 = v1 && inb1 && (act_rdata != {XB{1'b0}});
    // drain
    reg             dval;
    reg [PB-1:0]    v_d;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [DF-1:0]    oc_d;        // output channel being drained (its low AA bits address)
    /* verilator lint_on UNUSEDSIGNAL */
    wire [PB-1:0]   pool_sel;
    wire [XB-1:0]   y_q;
    wire [AA-1:0]   drain_addr = out_base + oc_d[AA-1:0] * out_plane + {{(AA - CB){1'b0}}, gy} * {{(AA - CB){1'b0}}, out_w}
                                 + {{(AA - CB){1'b0}}, gx};

    snn_sram #(.W(DW), .A(LA)) u_desc (
        .clk(clk), .re(state == S_DESC), .raddr(layer), .rdata(desc_rdata),
        .we(1'b0), .waddr({LA{1'b0}}), .wdata({DW{1'b0}}));
    snn_sram #(.W(XB), .A(AA)) u_act (
        .clk(clk), .re(state == S_MAC && in_bounds), .raddr(act_raddr), .rdata(act_rdata),
        .we(busy ? (dval && !last) : in_we), .waddr(busy ? drain_addr : in_addr), .wdata(busy ? y_q : in_wdata));
    snn_sram #(.W(N*WB), .A(WA)) u_wmem (
        .clk(clk), .re(nz1), .raddr(wrow_base + k1), .rdata(w_rdata),
        .we(1'b0), .waddr({WA{1'b0}}), .wdata({N*WB{1'b0}}));
    snn_sram #(.W(N*AB), .A(BA)) u_bias (
        .clk(clk), .re(state == S_BIAS), .raddr(b_base + tile[BA-1:0]), .rdata(bias_rdata),
        .we(1'b0), .waddr({BA{1'b0}}), .wdata({N*AB{1'b0}}));
    snn_sram #(.W(PB), .A(OA)) u_out (
        .clk(clk), .re(rd_en && !busy), .raddr(rd_addr), .rdata(out_rdata),
        .we(dval && last), .waddr(drain_addr[OA-1:0]), .wdata(v_d));
    assign rd_data = out_rdata;

    ann_agu #(.AA(AA), .CB(CB)) u_agu (
        .is_fc(is_fc), .base(in_base), .c_base(c_base), .k_index(kidx[AA-1:0]), .oy(oy), .ox(ox), .ky(ky), .kx(kx),
        .pad(ks >> 1), .in_h(in_h), .in_w(in_w), .addr(act_raddr), .in_bounds(in_bounds));

    ann_mac_array #(.N(N), .XB(XB), .WB(WB), .AB(AB), .PB(PB), .NB(NB)) u_array (
        .clk(clk), .rst_n(rst_n), .lanes_valid(lanes_valid),
        .load_bias(state == S_BIAS_WAIT), .bias_row(bias_rdata),
        .en(nz2), .x(x2), .weight_row(w_rdata),
        .pool_add(state == S_POOL), .pool_first(sub == 2'd0), .relu(relu),
        .sel(dn), .pool_sel(pool_sel));

    ann_requant #(.PB(PB), .MB(MB), .SB(SB), .XB(XB)) u_requant (.v(v_d), .mult(mult), .shift(shift), .y(y_q));

    // ---- operand pipeline and MAC counters (run every cycle) ----
    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            v1 <= 1'b0; inb1 <= 1'b0; k1 <= {WA{1'b0}}; v2 <= 1'b0; nz2 <= 1'b0; x2 <= {XB{1'b0}};
            mac_issued <= 48'd0; mac_skipped <= 48'd0;
        end else begin
            v1   <= (state == S_MAC);
            inb1 <= in_bounds;
            k1   <= kidx[WA-1:0];
            v2   <= v1;
            nz2  <= nz1;
            if (nz1) x2 <= act_rdata;  // zero gating: a zero activation leaves the operand still
            if (state == S_IDLE && start) begin
                mac_issued <= 48'd0; mac_skipped <= 48'd0;
            end else if (v2) begin
                if (nz2) mac_issued <= mac_issued + {{(48 - NB){1'b0}}, lanes_valid};
                else     mac_skipped <= mac_skipped + {{(48 - NB){1'b0}}, lanes_valid};
            end
        end
    end

    // ---- control ----
    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            state <= S_IDLE; done <= 1'b0; layer <= {LA{1'b0}}; cycle_count <= 32'd0;
            is_fc <= 1'b0; relu <= 1'b0; pool2 <= 1'b0; last <= 1'b0;
            ks <= {CB{1'b0}}; in_h <= {CB{1'b0}}; in_w <= {CB{1'b0}}; out_h <= {CB{1'b0}}; out_w <= {CB{1'b0}};
            k_len <= {DF{1'b0}}; tiles <= {DF{1'b0}}; in_base <= {AA{1'b0}}; out_base <= {AA{1'b0}};
            in_plane <= {AA{1'b0}}; out_plane <= {AA{1'b0}}; b_base <= {BA{1'b0}};
            mult <= {MB{1'b0}}; shift <= {SB{1'b0}};
            tile <= {DF{1'b0}}; kidx <= {DF{1'b0}}; oc_base <= {DF{1'b0}}; remaining <= {DF{1'b0}};
            gy <= {CB{1'b0}}; gx <= {CB{1'b0}}; ky <= {CB{1'b0}}; kx <= {CB{1'b0}}; sub <= 2'd0;
            c_base <= {AA{1'b0}}; wrow_base <= {WA{1'b0}}; flush <= 1'b0; dn <= {NB{1'b0}};
            dval <= 1'b0; v_d <= {PB{1'b0}}; oc_d <= {DF{1'b0}};
        end else begin
            done <= 1'b0;
            if (state == S_IDLE && start) cycle_count <= 32'd0;
            else if (busy) cycle_count <= cycle_count + 32'd1;
            case (state)
                S_IDLE: if (start) begin
                    layer <= {LA{1'b0}};
                    state <= S_DESC;
                end
                S_DESC: state <= S_DESC_WAIT;
                S_DESC_WAIT: begin
                    {last, pool2, relu, is_fc} <= desc_rdata[0*DF +: 4];
                    ks <= desc_rdata[1*DF +: CB];
                    remaining <= desc_rdata[3*DF +: DF];
                    in_h <= desc_rdata[4*DF +: CB]; in_w <= desc_rdata[5*DF +: CB];
                    in_plane <= desc_rdata[4*DF +: AA] * desc_rdata[5*DF +: AA];
                    k_len <= desc_rdata[6*DF +: DF]; tiles <= desc_rdata[7*DF +: DF];
                    in_base <= desc_rdata[8*DF +: AA]; out_base <= desc_rdata[9*DF +: AA];
                    wrow_base <= desc_rdata[10*DF +: WA]; b_base <= desc_rdata[11*DF +: BA];
                    mult <= desc_rdata[12*DF +: MB]; shift <= desc_rdata[13*DF +: SB];
                    out_h <= desc_rdata[14*DF +: CB]; out_w <= desc_rdata[15*DF +: CB];
                    out_plane <= desc_rdata[14*DF +: AA] * desc_rdata[15*DF +: AA];
                    tile <= {DF{1'b0}}; oc_base <= {DF{1'b0}};
                    gy <= {CB{1'b0}}; gx <= {CB{1'b0}}; sub <= 2'd0;
                    state <= S_BIAS;
                end
                S_BIAS: state <= S_BIAS_WAIT;
                S_BIAS_WAIT: begin  // the lanes load the bias row now
                    kidx <= {DF{1'b0}}; ky <= {CB{1'b0}}; kx <= {CB{1'b0}}; c_base <= {AA{1'b0}};
                    state <= S_MAC;
                end
                S_MAC: begin
                    kidx <= kidx + 1'b1;
                    if (kx == ks - 1'b1) begin
                        kx <= {CB{1'b0}};
                        if (ky == ks - 1'b1) begin
                            ky <= {CB{1'b0}};
                            c_base <= c_base + in_plane;
                        end else
                            ky <= ky + 1'b1;
                    end else
                        kx <= kx + 1'b1;
                    if (k_last) begin
                        flush <= 1'b0;
                        state <= S_FLUSH;
                    end
                end
                S_FLUSH: begin  // two cycles: the last slot's weight read, then its MAC
                    flush <= 1'b1;
                    if (flush) state <= S_POOL;
                end
                S_POOL: begin
                    if (!pool2 || sub == 2'd3) begin
                        dn <= {NB{1'b0}};
                        state <= S_DRAIN;
                    end else begin
                        sub <= sub + 1'b1;
                        state <= S_BIAS;
                    end
                end
                S_DRAIN: begin
                    if (dn < lanes_valid) begin
                        v_d  <= pool_sel;
                        oc_d <= oc_base + {{(DF - NB){1'b0}}, dn};
                        dval <= 1'b1;
                        dn   <= dn + 1'b1;
                    end else begin
                        dval  <= 1'b0;
                        state <= S_NEXT;
                    end
                end
                S_NEXT: begin
                    sub <= 2'd0;
                    state <= S_BIAS;
                    if (gx != out_w - 1'b1)
                        gx <= gx + 1'b1;
                    else if (gy != out_h - 1'b1) begin
                        gx <= {CB{1'b0}};
                        gy <= gy + 1'b1;
                    end else if (tile != tiles - 1'b1) begin
                        gx <= {CB{1'b0}}; gy <= {CB{1'b0}};
                        tile <= tile + 1'b1;
                        oc_base <= oc_base + LANES;
                        remaining <= remaining - LANES;
                        wrow_base <= wrow_base + k_len[WA-1:0];
                    end else if ({1'b0, layer} != cfg_layers - 1'b1) begin
                        layer <= layer + 1'b1;
                        state <= S_DESC;
                    end else
                        state <= S_DONE;
                end
                S_DONE: begin
                    done  <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
