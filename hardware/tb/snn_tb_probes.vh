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

    // The lane memories' counters, one 64-bit word per lane, summed only when read. Everything
    // here stays 64 bits wide: a wide temporary (a 1024-bit vector of all counters) is zeroed
    // by the Verilator model every cycle, about a tenth of the simulation's time.
    wire [63:0] vmem_r [0:P-1], vmem_w [0:P-1], i0_r [0:P-1], i0_w [0:P-1], q_r [0:P-1], q_w [0:P-1];
    genvar pg;
    generate
        for (pg = 0; pg < P; pg = pg + 1) begin : probe_lane
            assign vmem_r[pg] = dut.gen_lane[pg].u_vmem.reads;
            assign vmem_w[pg] = dut.gen_lane[pg].u_vmem.writes;
            assign i0_r[pg]   = dut.gen_lane[pg].u_i0.reads;
            assign i0_w[pg]   = dut.gen_lane[pg].u_i0.writes;
            assign q_r[pg]    = dut.gen_lane[pg].u_q.reads;
            assign q_w[pg]    = dut.gen_lane[pg].u_q.writes;
        end
    endgenerate

    // Lane counter `kind` (0 vmem reads, 1 vmem writes, 2 i0 reads, 3 i0 writes, 4 q reads, 5 q writes) over all lanes.
    function [63:0] lane_sum(input integer kind);
        integer n;
        begin
            lane_sum = 64'd0;
            for (n = 0; n < P; n = n + 1)
                case (kind)
                    0: lane_sum = lane_sum + vmem_r[n];
                    1: lane_sum = lane_sum + vmem_w[n];
                    2: lane_sum = lane_sum + i0_r[n];
                    3: lane_sum = lane_sum + i0_w[n];
                    4: lane_sum = lane_sum + q_r[n];
                    default: lane_sum = lane_sum + q_w[n];
                endcase
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

    localparam NMEM = 16;  // (reads, writes) of 8 memory kinds, listed from NMEM-1 down to 0
    // Counter k as it stands now: k = NMEM-1 is the first number of the M field.
    function [63:0] mem_count(input integer k);
        case (k)
            15: mem_count = dut.u_desc.reads;
            14: mem_count = dut.u_desc.writes;
            13: mem_count = dut.u_inq.reads;
            12: mem_count = dut.u_inq.writes;
            11: mem_count = dut.u_ptr.reads;
            10: mem_count = dut.u_ptr.writes;
            9:  mem_count = dut.u_wmem.reads;
            8:  mem_count = dut.u_wmem.writes;
            7:  mem_count = dut.u_bias.reads;
            6:  mem_count = dut.u_bias.writes;
            5:  mem_count = lane_sum(0);
            4:  mem_count = lane_sum(1);
            3:  mem_count = lane_sum(2);
            2:  mem_count = lane_sum(3);
            1:  mem_count = lane_sum(4);
            default: mem_count = lane_sum(5);
        endcase
    endfunction

    localparam NBUCKET = NPHASE + 1;  // the phases, then the host
    reg [63:0] mem_base [0:NMEM-1];
    reg [63:0] bucket_base [0:NMEM-1];
    reg [63:0] phase_mem [0:NBUCKET*NMEM-1];  // bucket b, counter k at b*NMEM + k
    reg [63:0] count_now;
    integer bucket = NPHASE, bi, mk;

    // Add the accesses since the last phase change to the current bucket.
    task close_bucket;
        begin
            for (mk = 0; mk < NMEM; mk = mk + 1) begin
                count_now = mem_count(mk);
                phase_mem[bucket*NMEM + mk] = phase_mem[bucket*NMEM + mk] + count_now - bucket_base[mk];
                bucket_base[mk] = count_now;
            end
        end
    endtask

    task snapshot_memory_counts;
        begin
            for (mk = 0; mk < NMEM; mk = mk + 1) begin
                mem_base[mk] = mem_count(mk);
                bucket_base[mk] = mem_base[mk];
            end
            bucket = NPHASE;
            for (bi = 0; bi < NBUCKET*NMEM; bi = bi + 1) phase_mem[bi] = 64'd0;
        end
    endtask

    task write_memory_counts(input integer fd);
        begin
            close_bucket;
            $fwrite(fd, " M");  // most significant first: counter NMEM-1 down to 0
            for (mk = NMEM - 1; mk >= 0; mk = mk - 1) $fwrite(fd, " %0d", mem_count(mk) - mem_base[mk]);
            $fwrite(fd, " P");  // bucket by bucket, each in the order of M
            for (bi = 0; bi < NBUCKET; bi = bi + 1)
                for (mk = NMEM - 1; mk >= 0; mk = mk - 1) $fwrite(fd, " %0d", phase_mem[bi*NMEM + mk]);
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
