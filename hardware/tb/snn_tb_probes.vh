// Simulation probes of the RTL testbench (included inside snn_tb; RTL builds only):
//   M  read and write accesses of every memory kind during this image (host writes of
//      its input events and read-back of its outputs included), from the counters inside
//      each snn_sram instance (lane memories summed over the P lanes);
//   S  cycles of the image spent in each phase of the core's state machine;
//   L  cycles of the image spent in each layer's event and fire phases;
//   P  the M counts split by phase, plus a last bucket for the host's accesses while the
//      core is idle (input-queue writes, output read-back). An access is attributed to the
//      phase of the cycle that issued it: the split is taken at each phase change, from the
//      counters as they stand at that clock edge, so the buckets add up to M exactly.
// Order and names are those of hardware/driver.py (MEMORY_KINDS, PHASES).
    localparam NPHASE = 5;  // clear, analog, events, fire, control
    localparam NLAYER = 1 << LA;
    reg [63:0] phase_cycles [0:NPHASE-1];
    reg [63:0] layer_cycles [0:NLAYER-1];
    integer pi;

    function integer phase_of(input [3:0] s, input is_analog);
        case (s)
            4'd1: phase_of = 0;                                         // S_CLEAR
            4'd4, 4'd5, 4'd6, 4'd7, 4'd8: phase_of = is_analog ? 1 : 2; // event read/decode/stream/drain
            4'd9, 4'd10: phase_of = 3;                                  // S_FIRE, S_FIRE_DRAIN
            default: phase_of = 4;                                      // descriptors, next layer/step
        endcase
    endfunction

    wire [64*P-1:0] vmem_r, vmem_w, i0_r, i0_w, q_r, q_w;
    genvar pg;
    generate
        for (pg = 0; pg < P; pg = pg + 1) begin : probe_lane
            assign vmem_r[pg*64 +: 64] = dut.gen_lane[pg].u_vmem.reads;
            assign vmem_w[pg*64 +: 64] = dut.gen_lane[pg].u_vmem.writes;
            assign i0_r[pg*64 +: 64]   = dut.gen_lane[pg].u_i0.reads;
            assign i0_w[pg*64 +: 64]   = dut.gen_lane[pg].u_i0.writes;
            assign q_r[pg*64 +: 64]    = dut.gen_lane[pg].u_q.reads;
            assign q_w[pg*64 +: 64]    = dut.gen_lane[pg].u_q.writes;
        end
    endgenerate

    function [63:0] lane_sum(input [64*P-1:0] counts);
        integer n;
        begin
            lane_sum = 64'd0;
            for (n = 0; n < P; n = n + 1) lane_sum = lane_sum + counts[n*64 +: 64];
        end
    endfunction

    task write_phases(input integer fd);
        begin
            $fwrite(fd, " S");
            for (pi = 0; pi < NPHASE; pi = pi + 1) $fwrite(fd, " %0d", phase_cycles[pi]);
            $fwrite(fd, " L");
            for (pi = 0; pi < NLAYER; pi = pi + 1) $fwrite(fd, " %0d", layer_cycles[pi]);
        end
    endtask

    localparam NMEM = 16;  // (reads, writes) of 8 memory kinds
    reg [64*NMEM-1:0] mem_base, mem_end;
    // A function, not a wire: summed only when an image starts or ends, never per cycle.
    function [64*NMEM-1:0] mem_now(input dummy);
        mem_now = {
            dut.u_desc.reads, dut.u_desc.writes, dut.u_inq.reads, dut.u_inq.writes,
            dut.u_ptr.reads, dut.u_ptr.writes, dut.u_wmem.reads, dut.u_wmem.writes,
            dut.u_bias.reads, dut.u_bias.writes, lane_sum(vmem_r), lane_sum(vmem_w),
            lane_sum(i0_r), lane_sum(i0_w), lane_sum(q_r), lane_sum(q_w)};
    endfunction

    localparam NBUCKET = NPHASE + 1;  // the phases, then the host
    reg [64*NMEM-1:0] phase_mem [0:NBUCKET-1];
    reg [64*NMEM-1:0] bucket_base;
    integer bucket = NPHASE, bi;

    // Add the accesses since the last phase change to the current bucket.
    task close_bucket;
        reg [64*NMEM-1:0] now;
        begin
            now = mem_now(1'b0);
            for (bi = 0; bi < NMEM; bi = bi + 1)
                phase_mem[bucket][bi*64 +: 64] = phase_mem[bucket][bi*64 +: 64] + now[bi*64 +: 64] - bucket_base[bi*64 +: 64];
            bucket_base = now;
        end
    endtask

    task snapshot_memory_counts;
        begin
            mem_base = mem_now(1'b0);
            bucket_base = mem_base;
            bucket = NPHASE;
            for (bi = 0; bi < NBUCKET; bi = bi + 1) phase_mem[bi] = {64*NMEM{1'b0}};
        end
    endtask

    task write_memory_counts(input integer fd);
        begin
            mem_end = mem_now(1'b0);
            close_bucket;
            $fwrite(fd, " M");  // most significant first: the order of mem_now
            for (pi = NMEM - 1; pi >= 0; pi = pi - 1) $fwrite(fd, " %0d", mem_end[pi*64 +: 64] - mem_base[pi*64 +: 64]);
            $fwrite(fd, " P");  // bucket by bucket, each in the order of M
            for (bi = 0; bi < NBUCKET; bi = bi + 1)
                for (pi = NMEM - 1; pi >= 0; pi = pi - 1) $fwrite(fd, " %0d", phase_mem[bi][pi*64 +: 64]);
        end
    endtask

    // Per cycle: the phase and layer cycle counts, and the memory buckets at each phase change.
    always @(posedge clk) begin
        if (start) begin
            for (pi = 0; pi < NPHASE; pi = pi + 1) phase_cycles[pi] <= 64'd0;
            for (pi = 0; pi < NLAYER; pi = pi + 1) layer_cycles[pi] <= 64'd0;
        end else if (busy) begin
            phase_cycles[phase_of(dut.state, dut.analog)] <= phase_cycles[phase_of(dut.state, dut.analog)] + 64'd1;
            if (!dut.analog && phase_of(dut.state, dut.analog) != 0 && phase_of(dut.state, dut.analog) != 4)
                layer_cycles[dut.layer] <= layer_cycles[dut.layer] + 64'd1;
        end
        if ((busy ? phase_of(dut.state, dut.analog) : NPHASE) != bucket) begin
            close_bucket;
            bucket = busy ? phase_of(dut.state, dut.analog) : NPHASE;
        end
    end
