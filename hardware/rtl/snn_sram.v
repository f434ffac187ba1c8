// Behavioural simple dual-port SRAM: one synchronous read port, one write port.
// Every memory of the accelerator is an instance of this module, so gate-level
// flows can leave it out of the netlist and count its accesses at the ports.
// A read and a write to the same address in one cycle return the old word.
// In simulation (not synthesis) each instance counts its read and write accesses,
// so memory energy comes from exact counts over whole inferences (hardware/memory_counts.py).
module snn_sram #(
    parameter W = 8,   // word width
    parameter A = 10   // address bits (depth 2**A)
) (
    input  wire         clk,
    input  wire         re,
    input  wire [A-1:0] raddr,
    output reg  [W-1:0] rdata,
    input  wire         we,
    input  wire [A-1:0] waddr,
    input  wire [W-1:0] wdata
);
    reg [W-1:0] mem [0:(1 << A) - 1];

    always @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
        if (re) rdata <= mem[raddr];
    end

`ifndef SYNTHESIS
    reg [63:0] reads = 64'd0, writes = 64'd0;  // accesses since time 0; never reset
    always @(posedge clk) begin
        if (re) reads <= reads + 64'd1;
        if (we) writes <= writes + 64'd1;
    end
`endif
endmodule
