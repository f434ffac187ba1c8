// Behavioural simple dual-port SRAM: one synchronous read port, one write port.
// Every memory of the accelerator is an instance of this module, so gate-level
// flows can leave it out of the netlist and count its accesses at the ports.
// A read and a write to the same address in one cycle return the old word.
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
endmodule
