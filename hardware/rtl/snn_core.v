// Event-driven, layer-serial SNN core (see hardware/README.md).
//
// Per image: clear the membranes, compute the analog first-layer current once
// (pixel events x weights into the I0 memory), then for every timestep and every
// synaptic layer: consume the layer's input events (AER queues written by the
// previous layer), add each event's non-zero weights to its fan-out targets on P
// lanes, then fire all neurons of the layer (P per cycle) and write the output
// events into the per-lane queues of the other queue set.
//
// Neuron n of a layer lives in bank (lane) channel % P (fc: index % P).
// Memories (all snn_sram instances, loaded by the host / $readmemh):
//   u_desc   layer descriptors                 u_ptr   per-key {start, rows}
//   u_wmem   compressed weight rows, P entries u_bias  bias rows, P values
//   u_inq    input (pixel) AER queue           lane l: u_vmem membranes,
//                                                      u_i0 analog current, u_q AER queue
module snn_core #(
    parameter P  = 16,  // lanes
    parameter WB = 8,   // weight bits (signed)
    parameter VB = 20,  // membrane saturation bits (signed)
    parameter AB = 28,  // stored membrane / accumulator bits (signed)
    parameter NA = 12,  // bank address bits (neurons per lane, all layers)
    parameter WA = 15,  // weight-row address bits
    parameter PA = 13,  // pointer address bits (keys, all layers)
    parameter BA = 6,   // bias-row address bits
    parameter LA = 3,   // descriptor address bits (up to 2**LA layers)
    parameter IA = 10   // input queue address bits
) (
    input  wire              clk,
    input  wire              rst_n,
    input  wire              start,
    output reg               busy,
    output reg               done,
    input  wire [LA:0]       cfg_layers,    // synaptic layers, 1 .. 2**LA
    input  wire [15:0]       cfg_timesteps, // T >= 1
    input  wire [NA:0]       cfg_vwords,    // bank words to clear per image
    input  wire [IA:0]       cfg_in_count,  // pixel events in the input queue
    input  wire              in_we,         // host write into the input queue
    input  wire [IA-1:0]     in_addr,
    input  wire [33:0]       in_wdata,      // {c[9:0], y[7:0], x[7:0], value[7:0]}
    input  wire              rd_en,         // host read of a membrane word (when idle)
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [7:0]        rd_lane,       // lane (P <= 256)
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [NA-1:0]     rd_addr,
    output wire [AB-1:0]     rd_data,
    output reg  [31:0]       cycle_count,
    output reg  [47:0]       sop_count,     // synaptic ops (spike events x non-zero weights)
    output reg  [47:0]       mac_count,     // analog first-layer multiply-accumulates
    output reg  [31:0]       spike_count    // output events of all spiking layers
);
`include "snn_params.vh"
    localparam [LB:0] LANES = P[LB:0];
`ifndef SYNTHESIS
    localparam [NA:0] QUEUE_SET = 1 << NA;  // events one lane's queue set holds (overflow check)
`ifdef SNN_FAULT_STUCK_ADDR
    localparam FAULT_BIT = 8;                           // membrane-bank write address bit stuck at 0
    localparam [NA-1:0] FAULT_MASK = 1 << FAULT_BIT;    // 0 (no fault) when NA <= FAULT_BIT
`endif
`endif

    // ------------------------------------------------------------------ state
    localparam S_IDLE = 4'd0, S_CLEAR = 4'd1, S_DESC = 4'd2, S_DESC_W = 4'd3,
               S_EV_RD = 4'd4, S_EV_DEC = 4'd5, S_EV_PTR = 4'd6, S_STREAM = 4'd7,
               S_DRAIN = 4'd8, S_FIRE = 4'd9, S_FIRE_DRAIN = 4'd10, S_NEXT = 4'd11;

    reg [3:0]    state;
    reg          analog;            // processing pixel events into I0
    reg [LA-1:0] layer;
    reg [15:0]   tstep;
    reg [NA:0]   clr_addr;
    reg [1:0]    drain;
    reg [IA:0]   in_idx;
    reg [LB:0]   q_lane;            // lane queue being consumed (P = all done)
    reg [NA:0]   q_idx;
    reg          rd_set;            // queue set holding this layer's input events
    reg [P*(NA+1)-1:0] q_count;     // events per lane in the set being read
    reg [P*(NA+1)-1:0] q_wr;        // events per lane written by the fire phase
    reg [WA-1:0] w_ptr;
    reg [CNTB-1:0] w_rem;

    // latched descriptor
    /* verilator lint_off UNUSEDSIGNAL */
    reg [DW-1:0] desc;
    /* verilator lint_on UNUSEDSIGNAL */
    wire         d_is_fc      = desc[0];
    wire         d_reset_zero = desc[1];
    wire [1:0]   d_ps         = desc[3:2];
    wire [15:0]  d_in_plane   = desc[19:4];
    wire [YB-1:0] d_in_w      = desc[27:20];
    wire [YB-1:0] d_oh        = desc[35:28];
    wire [YB-1:0] d_ow        = desc[43:36];
    wire [15:0]  d_fire_n     = desc[75:60];
    wire [15:0]  d_vbase      = desc[91:76];
    wire [15:0]  d_ptr_base   = desc[107:92];
    wire [15:0]  d_bias_base  = desc[123:108];
    wire [15:0]  d_cout       = desc[139:124];
    wire [31:0]  d_thr        = desc[171:140];
    wire         is_last      = ({1'b0, layer} == cfg_layers - 1'b1);

    // current event
    reg [15:0]   ev_pp;
    reg [YB-1:0] ev_py, ev_px;
    reg [7:0]    ev_val;

    // fire counters
    reg [15:0]   f_addr;
    reg [YB-1:0] f_x, f_y;
    reg [15:0]   f_g;

    // ------------------------------------------------------------ memories
    wire [DW-1:0] desc_rdata;
    snn_sram #(.W(DW), .A(LA)) u_desc (
        .clk(clk), .re(state == S_DESC), .raddr(layer), .rdata(desc_rdata),
        .we(1'b0), .waddr({LA{1'b0}}), .wdata({DW{1'b0}}));

    wire [INB-1:0] inq_rdata;
    wire inq_re = (state == S_EV_RD) && analog && (in_idx != cfg_in_count);
    snn_sram #(.W(INB), .A(IA)) u_inq (
        .clk(clk), .re(inq_re), .raddr(in_idx[IA-1:0]), .rdata(inq_rdata),
        .we(in_we && !busy), .waddr(in_addr), .wdata(in_wdata));

    // event being decoded: a pixel event or a spike event from lane queue q_lane
    wire [P*EVB-1:0] q_rdata;
    reg  [EVB-1:0]   q_sel;
    reg  [LB-1:0]    q_lane_d;
    integer k;
    always @(*) begin
        q_sel = {EVB{1'b0}};
        for (k = 0; k < P; k = k + 1)
            if (q_lane_d == k[LB-1:0]) q_sel = q_rdata[k*EVB +: EVB];
    end
    wire [EVB-1:0] dec_event = analog ? inq_rdata[INB-1:8] : q_sel;

    wire [PA-1:0] dec_key_full;
    wire [15:0]   dec_pp;
    wire [YB-1:0] dec_py, dec_px;
    snn_event_decode #(.CB(CB), .YB(YB), .KB(PA), .PB(16)) u_decode (
        .event_word(dec_event), .ps(d_ps), .is_fc(d_is_fc), .in_plane(d_in_plane),
        .in_w(d_in_w), .ow(d_ow), .key(dec_key_full), .pp(dec_pp), .py(dec_py), .px(dec_px));
    /* verilator lint_off UNUSEDSIGNAL */
    wire [15:0] ptr_sum = d_ptr_base + {{(16-PA){1'b0}}, dec_key_full};
    /* verilator lint_on UNUSEDSIGNAL */

    wire [PW-1:0] ptr_rdata;
    snn_sram #(.W(PW), .A(PA)) u_ptr (
        .clk(clk), .re(state == S_EV_DEC), .raddr(ptr_sum[PA-1:0]), .rdata(ptr_rdata),
        .we(1'b0), .waddr({PA{1'b0}}), .wdata({PW{1'b0}}));
    wire [WA-1:0]   ptr_start = ptr_rdata[WA-1:0];
    wire [CNTB-1:0] ptr_rows  = ptr_rdata[PW-1:WA];

    wire          w_issue = (state == S_EV_PTR && ptr_rows != {CNTB{1'b0}}) || state == S_STREAM;
    wire [WA-1:0] w_addr  = (state == S_EV_PTR) ? ptr_start : w_ptr;
    wire [P*ES-1:0] w_rdata;
    snn_sram #(.W(P*ES), .A(WA)) u_wmem (
        .clk(clk), .re(w_issue), .raddr(w_addr), .rdata(w_rdata),
        .we(1'b0), .waddr({WA{1'b0}}), .wdata({(P*ES){1'b0}}));

    wire f_issue = (state == S_FIRE);
    /* verilator lint_off UNUSEDSIGNAL */
    wire [15:0] bias_sum = d_bias_base + f_g;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [P*AB-1:0] bias_rdata;
    snn_sram #(.W(P*AB), .A(BA)) u_bias (
        .clk(clk), .re(f_issue), .raddr(bias_sum[BA-1:0]), .rdata(bias_rdata),
        .we(1'b0), .waddr({BA{1'b0}}), .wdata({(P*AB){1'b0}}));

    // ------------------------------------------------------ pipeline registers
    // Per-lane signals stay inside gen_lane (no flattened P-wide buses between lanes):
    // a change in one lane then wakes only that lane's logic in an event-driven simulator.
    reg           a_valid;          // stage A: weight row available
    reg           a_analog;
    reg           b_analog;         // stage B: read-modify-write (per-lane registers in gen_lane)
    reg           f1_valid;         // fire stage 1: membrane word available
    /* verilator lint_off UNUSEDSIGNAL */
    reg [15:0]    f1_addr;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [YB-1:0]  f1_x, f1_y;
    reg [15:0]    f1_g;
    reg           f1_use_i0;
    reg           wr_set;

    wire [P-1:0]      lane_valid;
    wire [P-1:0]      emit;
    wire [P*AB-1:0]   rd_parts;         // host read-back: the addressed lane's word, zero elsewhere
    wire [15:0]       f_vaddr = d_vbase + f_addr;
    wire              host_read = rd_en && !busy;
    reg  [LB-1:0]     rd_lane_d;
    reg               rd_valid_d;

    genvar l;
    generate
        for (l = 0; l < P; l = l + 1) begin : gen_lane
            wire [NA-1:0]   target;
            wire            valid;
            wire [PROD-1:0] product;
            snn_lane #(.WB(WB), .NA(NA), .YB(YB), .DB(DB), .PROD(PROD)) u_lane (
                .entry(w_rdata[l*ES +: ES]), .vbase(d_vbase), .pp(ev_pp), .py(ev_py), .px(ev_px),
                .oh(d_oh), .ow(d_ow), .payload(ev_val),
                .target(target), .valid(valid), .product(product));
            assign lane_valid[l] = valid;

            reg            b_valid;
            reg [NA-1:0]   b_addr;
            reg [PROD-1:0] b_prod;
            always @(posedge clk or negedge rst_n) begin
                if (!rst_n) begin
                    b_valid <= 1'b0; b_addr <= {NA{1'b0}}; b_prod <= {PROD{1'b0}};
                end else begin
                    b_valid <= a_valid && valid;
                    b_addr  <= target;
                    b_prod  <= product;
                end
            end

            // membrane bank: read by stage A, the fire phase or the host; written by
            // stage B, the fire phase or the clear phase
            wire [AB-1:0] v_q, i0_q;
            wire [AB-1:0] prod_ext = {{(AB-PROD){b_prod[PROD-1]}}, b_prod};
            wire [AB-1:0] acc_sum = v_q + prod_ext;
            wire [AB-1:0] i0_sum  = i0_q + prod_ext;
            wire [AB-1:0] v_next;
            wire          spike;
            snn_fire_unit #(.VB(VB), .AB(AB)) u_fire (
                .v(v_q), .i0(i0_q), .bias(bias_rdata[l*AB +: AB]),
                .use_i0(f1_use_i0), .thr(d_thr), .reset_zero(d_reset_zero), .is_last(is_last),
                .v_next(v_next), .spike(spike));

            wire          v_re    = (a_valid && !a_analog && valid) || f_issue || host_read;
            wire [NA-1:0] v_raddr = f_issue ? f_vaddr[NA-1:0] : (host_read ? rd_addr : target);
            wire          v_we    = (state == S_CLEAR) || f1_valid || (b_valid && !b_analog);
            wire [NA-1:0] v_waddr_fn = (state == S_CLEAR) ? clr_addr[NA-1:0] : (f1_valid ? f1_addr[NA-1:0] : b_addr);
`ifdef SYNTHESIS
            wire [NA-1:0] v_waddr = v_waddr_fn;
`elsif SNN_FAULT_STUCK_ADDR
            // Fault injection, simulation only: one write-address bit of every membrane bank
            // stuck at 0 (FAULT_MASK), to prove the random suite detects such a defect.
            wire [NA-1:0] v_waddr = v_waddr_fn & ~FAULT_MASK;
`else
            wire [NA-1:0] v_waddr = v_waddr_fn;
`endif
            wire [AB-1:0] v_wdata = (state == S_CLEAR) ? {AB{1'b0}} : (f1_valid ? v_next : acc_sum);
            snn_sram #(.W(AB), .A(NA)) u_vmem (
                .clk(clk), .re(v_re), .raddr(v_raddr), .rdata(v_q),
                .we(v_we), .waddr(v_waddr), .wdata(v_wdata));

            wire          i_re    = (a_valid && a_analog && valid) || (f_issue && layer == {LA{1'b0}});
            wire [NA-1:0] i_raddr = f_issue ? f_addr[NA-1:0] : target;
            wire          i_we    = (state == S_CLEAR) || (b_valid && b_analog);
            wire [NA-1:0] i_waddr = (state == S_CLEAR) ? clr_addr[NA-1:0] : b_addr;
            wire [AB-1:0] i_wdata = (state == S_CLEAR) ? {AB{1'b0}} : i0_sum;
            snn_sram #(.W(AB), .A(NA)) u_i0 (
                .clk(clk), .re(i_re), .raddr(i_raddr), .rdata(i0_q),
                .we(i_we), .waddr(i_waddr), .wdata(i_wdata));

            // AER output queue of this lane; the set bit selects the ping-pong half
            /* verilator lint_off UNUSEDSIGNAL */
            wire [31:0] channel = f1_g * P + l;
            /* verilator lint_on UNUSEDSIGNAL */
            assign emit[l] = f1_valid && spike && (channel[15:0] < d_cout);
            wire q_re = (state == S_EV_RD) && !analog && (q_lane == l) && (q_idx != q_count[l*(NA+1) +: NA+1]);
            snn_sram #(.W(EVB), .A(NA + 1)) u_q (
                .clk(clk), .re(q_re), .raddr({rd_set, q_idx[NA-1:0]}), .rdata(q_rdata[l*EVB +: EVB]),
                .we(emit[l]), .waddr({wr_set, q_wr[l*(NA+1) +: NA]}), .wdata({channel[CB-1:0], f1_y, f1_x}));

`ifndef SYNTHESIS
            // Simulation-only overflow checks (yosys defines SYNTHESIS, so the netlist is
            // unchanged). The exporter proves none of them can happen for a model it accepts
            // (|acc| < 2**(AB-1), at most 2**NA neurons per lane); a model or descriptor that
            // bypasses it stops the simulation with one line naming the lane and address.
            // Signed overflow of an AB-bit sum: both addends share a sign the sum lacks.
            wire v_overflow  = (v_q[AB-1] == prod_ext[AB-1]) && (acc_sum[AB-1] != v_q[AB-1]);
            wire i0_overflow = (i0_q[AB-1] == prod_ext[AB-1]) && (i0_sum[AB-1] != i0_q[AB-1]);
            // A queue set holds QUEUE_SET events per lane; the counter has one bit more.
            wire q_full = (q_wr[l*(NA+1) +: NA+1] >= QUEUE_SET);
            always @(posedge clk) begin
                if (b_valid && !b_analog && v_overflow) begin
                    $error("snn_core: membrane accumulator overflow (%0d-bit) in lane %0d at bank address %0d", AB, l, b_addr);
                    $fatal(1, "snn_core: stopped by the overflow check above");
                end
                if (b_valid && b_analog && i0_overflow) begin
                    $error("snn_core: analog I0 accumulator overflow (%0d-bit) in lane %0d at bank address %0d", AB, l, b_addr);
                    $fatal(1, "snn_core: stopped by the overflow check above");
                end
                if (emit[l] && q_full) begin
                    $error("snn_core: AER queue overflow in lane %0d: more than %0d events in one queue set", l, QUEUE_SET);
                    $fatal(1, "snn_core: stopped by the overflow check above");
                end
            end
`endif

            // host read-back: only the addressed lane drives its part (constant zero while busy)
            assign rd_parts[l*AB +: AB] = (rd_valid_d && rd_lane_d == l) ? v_q : {AB{1'b0}};
        end
    endgenerate
    reg [AB-1:0] rd_or;
    always @(*) begin
        rd_or = {AB{1'b0}};
        for (k = 0; k < P; k = k + 1) rd_or = rd_or | rd_parts[k*AB +: AB];
    end
    assign rd_data = rd_or;

    function [LB:0] popcount;
        input [P-1:0] bits;
        integer i;
        begin
            popcount = {(LB+1){1'b0}};
            for (i = 0; i < P; i = i + 1) popcount = popcount + {{LB{1'b0}}, bits[i]};
        end
    endfunction

    // --------------------------------------------------------------- control
    wire [P-1:0] a_hits = a_valid ? lane_valid : {P{1'b0}};

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            state <= S_IDLE; busy <= 1'b0; done <= 1'b0; analog <= 1'b0;
            layer <= {LA{1'b0}}; tstep <= 16'd0; clr_addr <= {(NA+1){1'b0}}; drain <= 2'd0;
            in_idx <= {(IA+1){1'b0}}; q_lane <= {(LB+1){1'b0}}; q_idx <= {(NA+1){1'b0}};
            rd_set <= 1'b0; wr_set <= 1'b1; q_count <= {(P*(NA+1)){1'b0}}; q_wr <= {(P*(NA+1)){1'b0}};
            w_ptr <= {WA{1'b0}}; w_rem <= {CNTB{1'b0}}; desc <= {DW{1'b0}};
            ev_pp <= 16'd0; ev_py <= {YB{1'b0}}; ev_px <= {YB{1'b0}}; ev_val <= 8'd0;
            f_addr <= 16'd0; f_x <= {YB{1'b0}}; f_y <= {YB{1'b0}}; f_g <= 16'd0;
            a_valid <= 1'b0; a_analog <= 1'b0; b_analog <= 1'b0; rd_valid_d <= 1'b0;
            f1_valid <= 1'b0; f1_addr <= 16'd0; f1_x <= {YB{1'b0}}; f1_y <= {YB{1'b0}}; f1_g <= 16'd0; f1_use_i0 <= 1'b0;
            q_lane_d <= {LB{1'b0}}; rd_lane_d <= {LB{1'b0}};
            cycle_count <= 32'd0; sop_count <= 48'd0; mac_count <= 48'd0; spike_count <= 32'd0;
        end else begin
            rd_lane_d <= rd_lane[LB-1:0];
            rd_valid_d <= host_read;
            // synaptic pipeline: stage A (decode + read) -> stage B (add + write)
            a_valid  <= w_issue;
            a_analog <= analog;
            b_analog <= a_analog;
            if (a_valid) begin
                if (a_analog) mac_count <= mac_count + {{(47-LB){1'b0}}, popcount(a_hits)};
                else          sop_count <= sop_count + {{(47-LB){1'b0}}, popcount(a_hits)};
            end
            // fire pipeline stage 1
            f1_valid  <= f_issue;
            f1_addr   <= f_vaddr;
            f1_x      <= f_x;
            f1_y      <= f_y;
            f1_g      <= f_g;
            f1_use_i0 <= (layer == {LA{1'b0}});
            if (f1_valid) begin
                spike_count <= spike_count + {{(31-LB){1'b0}}, popcount(emit)};
                for (k = 0; k < P; k = k + 1)
                    if (emit[k]) q_wr[k*(NA+1) +: NA+1] <= q_wr[k*(NA+1) +: NA+1] + 1'b1;
            end
            if (busy) cycle_count <= cycle_count + 32'd1;

            case (state)
                S_IDLE: if (start) begin
                    busy <= 1'b1; done <= 1'b0; clr_addr <= {(NA+1){1'b0}};
                    cycle_count <= 32'd0; sop_count <= 48'd0; mac_count <= 48'd0; spike_count <= 32'd0;
                    state <= S_CLEAR;
                end
                S_CLEAR: begin
                    clr_addr <= clr_addr + 1'b1;
                    if (clr_addr + 1'b1 >= cfg_vwords) begin
                        layer <= {LA{1'b0}}; tstep <= 16'd0; analog <= 1'b1; state <= S_DESC;
                    end
                end
                S_DESC: state <= S_DESC_W;
                S_DESC_W: begin
                    desc <= desc_rdata;
                    in_idx <= {(IA+1){1'b0}}; q_lane <= {(LB+1){1'b0}}; q_idx <= {(NA+1){1'b0}};
                    if (analog || layer != {LA{1'b0}}) state <= S_EV_RD;
                    else state <= S_DRAIN;  // layer 0 in a timestep: no input events
                end
                S_EV_RD: begin
                    if (analog) begin
                        if (in_idx == cfg_in_count) state <= S_DRAIN;
                        else begin in_idx <= in_idx + 1'b1; state <= S_EV_DEC; end
                    end else if (q_lane == LANES) begin
                        state <= S_DRAIN;
                    end else if (q_idx == q_count[q_lane[LB-1:0]*(NA+1) +: NA+1]) begin
                        q_lane <= q_lane + 1'b1; q_idx <= {(NA+1){1'b0}};
                    end else begin
                        q_idx <= q_idx + 1'b1; q_lane_d <= q_lane[LB-1:0]; state <= S_EV_DEC;
                    end
                end
                S_EV_DEC: begin
                    ev_pp <= dec_pp; ev_py <= dec_py; ev_px <= dec_px;
                    ev_val <= analog ? inq_rdata[7:0] : 8'd1;
                    state <= S_EV_PTR;
                end
                S_EV_PTR: begin
                    w_ptr <= ptr_start + 1'b1;
                    w_rem <= ptr_rows - 1'b1;
                    state <= (ptr_rows > 1) ? S_STREAM : S_EV_RD;
                end
                S_STREAM: begin
                    w_ptr <= w_ptr + 1'b1;
                    w_rem <= w_rem - 1'b1;
                    if (w_rem == 1) state <= S_EV_RD;
                end
                S_DRAIN: begin  // let the last read-modify-writes land
                    drain <= drain + 1'b1;
                    if (drain == 2'd2) begin
                        drain <= 2'd0; analog <= 1'b0;
                        f_addr <= 16'd0; f_x <= {YB{1'b0}}; f_y <= {YB{1'b0}}; f_g <= 16'd0;
                        q_wr <= {(P*(NA+1)){1'b0}};
                        state <= (d_fire_n == 16'd0) ? S_FIRE_DRAIN : S_FIRE;
                    end
                end
                S_FIRE: begin
                    f_addr <= f_addr + 1'b1;
                    if (f_x == d_ow - 1'b1) begin
                        f_x <= {YB{1'b0}};
                        if (f_y == d_oh - 1'b1) begin f_y <= {YB{1'b0}}; f_g <= f_g + 1'b1; end
                        else f_y <= f_y + 1'b1;
                    end else f_x <= f_x + 1'b1;
                    if (f_addr == d_fire_n - 1'b1) state <= S_FIRE_DRAIN;
                end
                S_FIRE_DRAIN: begin
                    drain <= drain + 1'b1;
                    if (drain == 2'd1) begin
                        drain <= 2'd0;
                        q_count <= q_wr; rd_set <= wr_set; wr_set <= rd_set;
                        state <= S_NEXT;
                    end
                end
                S_NEXT: begin
                    if (is_last) begin
                        layer <= {LA{1'b0}};
                        if (tstep == cfg_timesteps - 1'b1) begin
                            busy <= 1'b0; done <= 1'b1; state <= S_IDLE;
                        end else begin
                            tstep <= tstep + 1'b1; state <= S_DESC;
                        end
                    end else begin
                        layer <= layer + 1'b1; state <= S_DESC;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
