// Simulation top of the ANN accelerator (hardware/rtl/ann_core.v), self-running with
// +ANN_RUN under the Verilator build of hardware/ann/sim.py, in the style of snn_tb.v:
//   reset; load the model memory images named by +ANN_DESC= +ANN_WMEM= +ANN_BIAS=
//   ($readmemh into the core's snn_sram instances); configure +ANN_LAYERS=; then for each
//   image of +ANN_BATCH= (words: n_images, pixels per image, then the pixels) write its
//   pixels through the host port to activation addresses 0.., start, wait for done, read
//   the +ANN_NOUT= logits back, and write one line to +ANN_OUT=:
//     "cycles issued skipped toggles O <logit...> M <reads writes of desc act wmem bias out>"
//   (toggles and memory accesses of this image: host writes and read-back included); $finish.
`timescale 1ns/1ps
module ann_tb #(
    parameter N = 64, WB = 5, XB = 8, AB = 32, MB = 16, AA = 14, WA = 13, BA = 7, OA = 4, LA = 3,
    parameter BQ = 22  // batch file words (address bits)
) ();
    localparam PB = AB + 2;
    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg              rst_n = 1'b0, start = 1'b0, in_we = 1'b0, rd_en = 1'b0;
    reg [LA:0]       cfg_layers = 1;
    reg [AA-1:0]     in_addr = 0;
    reg [XB-1:0]     in_wdata = 0;
    reg [OA-1:0]     rd_addr = 0;
    wire             busy, done;
    wire [PB-1:0]    rd_data;
    wire [31:0]      cycle_count;
    wire [47:0]      mac_issued, mac_skipped;

    ann_core #(.N(N), .WB(WB), .XB(XB), .AB(AB), .MB(MB), .AA(AA), .WA(WA), .BA(BA), .OA(OA), .LA(LA)) dut (
        .clk(clk), .rst_n(rst_n), .start(start), .busy(busy), .done(done), .cfg_layers(cfg_layers),
        .in_we(in_we), .in_addr(in_addr), .in_wdata(in_wdata), .rd_en(rd_en), .rd_addr(rd_addr), .rd_data(rd_data),
        .cycle_count(cycle_count), .mac_issued(mac_issued), .mac_skipped(mac_skipped));

    // memory access counters of the snn_sram instances, snapshot at the start of an image
    reg [63:0] m0 [0:9];
    reg [63:0] t0;
    task snapshot;
        begin
            m0[0] = dut.u_desc.reads; m0[1] = dut.u_desc.writes; m0[2] = dut.u_act.reads; m0[3] = dut.u_act.writes;
            m0[4] = dut.u_wmem.reads; m0[5] = dut.u_wmem.writes; m0[6] = dut.u_bias.reads; m0[7] = dut.u_bias.writes;
            m0[8] = dut.u_out.reads;  m0[9] = dut.u_out.writes;  t0 = dut.u_array.acc_toggles;
        end
    endtask
    task write_memory_counts(input integer f);
        begin
            $fwrite(f, " M %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d",
                    dut.u_desc.reads - m0[0], dut.u_desc.writes - m0[1], dut.u_act.reads - m0[2], dut.u_act.writes - m0[3],
                    dut.u_wmem.reads - m0[4], dut.u_wmem.writes - m0[5], dut.u_bias.reads - m0[6], dut.u_bias.writes - m0[7],
                    dut.u_out.reads - m0[8], dut.u_out.writes - m0[9]);
        end
    endtask

    reg [XB-1:0] batch_mem [0:(1 << BQ) - 1];
    reg [31:0]   batch_head [0:1];
    reg [8*1024-1:0] f_desc, f_wmem, f_bias, f_batch, f_head, f_out;
    integer fd, n_images, n_pixels, n_out, image, ptr, j;

    initial begin
        if ($test$plusargs("ANN_RUN")) begin
            if (!$value$plusargs("ANN_LAYERS=%d", cfg_layers) || !$value$plusargs("ANN_NOUT=%d", n_out)
                || !$value$plusargs("ANN_DESC=%s", f_desc) || !$value$plusargs("ANN_WMEM=%s", f_wmem)
                || !$value$plusargs("ANN_BIAS=%s", f_bias) || !$value$plusargs("ANN_HEAD=%s", f_head)
                || !$value$plusargs("ANN_BATCH=%s", f_batch) || !$value$plusargs("ANN_OUT=%s", f_out)) begin
                $display("ann_tb: +ANN_RUN needs +ANN_LAYERS= +ANN_NOUT= +ANN_DESC= +ANN_WMEM= +ANN_BIAS= +ANN_HEAD= +ANN_BATCH= +ANN_OUT=");
                $finish;
            end
            $readmemh(f_desc, dut.u_desc.mem);
            $readmemh(f_wmem, dut.u_wmem.mem);
            $readmemh(f_bias, dut.u_bias.mem);
            $readmemh(f_head, batch_head);
            $readmemh(f_batch, batch_mem);
            n_images = batch_head[0];
            n_pixels = batch_head[1];
            fd = $fopen(f_out, "w");
            repeat (3) @(negedge clk);
            rst_n = 1'b1;
            ptr = 0;
            for (image = 0; image < n_images; image = image + 1) begin
                @(negedge clk);
                snapshot;
                for (j = 0; j < n_pixels; j = j + 1) begin
                    in_we = 1'b1; in_addr = j; in_wdata = batch_mem[ptr];
                    ptr = ptr + 1;
                    @(negedge clk);
                end
                in_we = 1'b0; start = 1'b1;
                @(negedge clk);
                start = 1'b0;
                wait (done);
                @(negedge clk);
                $fwrite(fd, "%0d %0d %0d %0d O", cycle_count, mac_issued, mac_skipped, dut.u_array.acc_toggles - t0);
                rd_en = 1'b1;
                for (j = 0; j < n_out; j = j + 1) begin
                    rd_addr = j;
                    @(negedge clk);
                    $fwrite(fd, " %0d", $signed(rd_data));
                end
                rd_en = 1'b0;
                write_memory_counts(fd);
                $fwrite(fd, "\n");
                $fflush(fd);  // one line per image as it finishes: the progress bar counts them
            end
            $fclose(fd);
            $finish;
        end
    end
endmodule
