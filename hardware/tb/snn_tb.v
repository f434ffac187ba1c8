// Simulation top: free-running clock, the core, and two strobes, driven either by cocotb
// (Icarus, hardware/driver.py) or, with +SNN_RUN, by this file alone (Verilator,
// hardware/verilator.py: reset, load, configure from +SNN_LAYERS= +SNN_T= +SNN_VWORDS=,
// run one batch, $finish):
//   load   (re)reads the model memory images named by plusargs into the core's memories
//          (+SNN_DESC= +SNN_PTR= +SNN_WMEM= +SNN_BIAS=), so one run can test many models;
//   batch  runs a batch of images through the host port like a host processor would:
//          +SNN_BATCH= file: {n_images, then per image: n_events, events {c,y,x,value}},
//          +SNN_OMAP=  file: {n_outputs, then per output: lane << 16 | bank address},
//          +SNN_OUT=   one result line per image (hardware/driver.py parse_results):
//            "cycles sops macs spikes S <cycles per phase> L <cycles per layer>
//             O <potential...> M <reads writes of each memory kind, cumulative>";
//          batch_done rises when the file is complete.
// The memory and phase probes read RTL-internal names; a gate-level build defines
// SNN_GATE_LEVEL and reports only the core's own counters and potentials.
// The per-image loop lives here rather than in Python so a simulation spends its time
// in the core, not in cocotb's per-cycle scheduling.
`timescale 1ns/1ps
module snn_tb #(
    parameter P = 16, WB = 8, VB = 24, AB = 32, NA = 12, WA = 15, PA = 13, BA = 6, LA = 3, IA = 10,
    parameter BQ = 20  // batch file words (address bits)
) ();
    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg              rst_n = 1'b0, start = 1'b0, in_we = 1'b0, rd_en = 1'b0, load = 1'b0, batch = 1'b0, batch_done = 1'b0;
    reg [LA:0]       cfg_layers = 1;
    reg [15:0]       cfg_timesteps = 1;
    reg [NA:0]       cfg_vwords = 1;
    reg [IA:0]       cfg_in_count = 0;
    reg [IA-1:0]     in_addr = 0;
    reg [33:0]       in_wdata = 0;
    reg [7:0]        rd_lane = 0;
    reg [NA-1:0]     rd_addr = 0;
    wire             busy, done;
    wire [AB-1:0]    rd_data;
    wire [31:0]      cycle_count, spike_count;
    wire [47:0]      sop_count, mac_count;

    snn_core #(.P(P), .WB(WB), .VB(VB), .AB(AB), .NA(NA), .WA(WA), .PA(PA), .BA(BA), .LA(LA), .IA(IA)) dut (
        .clk(clk), .rst_n(rst_n), .start(start), .busy(busy), .done(done),
        .cfg_layers(cfg_layers), .cfg_timesteps(cfg_timesteps), .cfg_vwords(cfg_vwords), .cfg_in_count(cfg_in_count),
        .in_we(in_we), .in_addr(in_addr), .in_wdata(in_wdata),
        .rd_en(rd_en), .rd_lane(rd_lane), .rd_addr(rd_addr), .rd_data(rd_data),
        .cycle_count(cycle_count), .sop_count(sop_count), .mac_count(mac_count), .spike_count(spike_count));

`ifndef SNN_GATE_LEVEL
`include "snn_tb_probes.vh"
`endif

    reg [8*1024-1:0] f_desc, f_ptr, f_wmem, f_bias;
    always @(posedge load) begin
        if ($value$plusargs("SNN_DESC=%s", f_desc)) $readmemh(f_desc, dut.u_desc.mem);
        if ($value$plusargs("SNN_PTR=%s", f_ptr))   $readmemh(f_ptr, dut.u_ptr.mem);
        if ($value$plusargs("SNN_WMEM=%s", f_wmem)) $readmemh(f_wmem, dut.u_wmem.mem);
        if ($value$plusargs("SNN_BIAS=%s", f_bias)) $readmemh(f_bias, dut.u_bias.mem);
    end

    reg [33:0] batch_mem [0:(1 << BQ) - 1];
    reg [31:0] omap [0:1023];
    reg [8*1024-1:0] f_batch, f_omap, f_out;
    integer fd, n_images, image, ptr, count, j;
    always @(posedge batch) begin : run_batch
        batch_done = 1'b0;
        if (!$value$plusargs("SNN_BATCH=%s", f_batch) || !$value$plusargs("SNN_OMAP=%s", f_omap)
            || !$value$plusargs("SNN_OUT=%s", f_out)) begin
            $display("snn_tb: batch needs +SNN_BATCH= +SNN_OMAP= +SNN_OUT=");
            $finish;
        end
        $readmemh(f_batch, batch_mem);
        $readmemh(f_omap, omap);
        fd = $fopen(f_out, "w");
        n_images = batch_mem[0];
        ptr = 1;
        for (image = 0; image < n_images; image = image + 1) begin
            count = batch_mem[ptr];
            ptr = ptr + 1;
`ifndef SNN_GATE_LEVEL
            snapshot_memory_counts;
`endif
            for (j = 0; j < count; j = j + 1) begin
                @(negedge clk);
                in_we = 1'b1; in_addr = j; in_wdata = batch_mem[ptr];
                ptr = ptr + 1;
            end
            @(negedge clk);
            in_we = 1'b0; cfg_in_count = count; start = 1'b1;
            @(negedge clk);
            start = 1'b0;
            wait (done);
            @(negedge clk);
            $fwrite(fd, "%0d %0d %0d %0d", cycle_count, sop_count, mac_count, spike_count);
`ifndef SNN_GATE_LEVEL
            write_phases(fd);
`endif
            $fwrite(fd, " O");
            rd_en = 1'b1;
            for (j = 1; j <= omap[0]; j = j + 1) begin
                rd_lane = omap[j][23:16]; rd_addr = omap[j][NA-1:0];
                @(negedge clk);
                $fwrite(fd, " %0d", $signed(rd_data));
            end
            rd_en = 1'b0;
`ifndef SNN_GATE_LEVEL
            write_memory_counts(fd);  // after the read-back: it belongs to this image
`endif
            $fwrite(fd, "\n");
            $fflush(fd);  // one line per image as it finishes: the progress bar counts them
        end
        $fclose(fd);
        batch_done = 1'b1;
    end

    // Self-running mode (Verilator has no cocotb here): the host sequence of driver.py.
    initial begin
        if ($test$plusargs("SNN_RUN")) begin
            if (!$value$plusargs("SNN_LAYERS=%d", cfg_layers) || !$value$plusargs("SNN_T=%d", cfg_timesteps)
                || !$value$plusargs("SNN_VWORDS=%d", cfg_vwords)) begin
                $display("snn_tb: +SNN_RUN needs +SNN_LAYERS= +SNN_T= +SNN_VWORDS=");
                $finish;
            end
            repeat (3) @(negedge clk);
            rst_n = 1'b1;
            @(negedge clk);
            load = 1'b1;
            @(negedge clk);
            load = 1'b0;
            @(negedge clk);
            batch = 1'b1;
            wait (batch_done);
            @(negedge clk);
            $finish;
        end
    end
endmodule
