// Derived widths shared by snn_core and its testbench (included inside modules).
localparam CB   = 10;               // channel bits of an AER event
localparam YB   = 8;                // row / column bits of an AER event
localparam DB   = 5;                // signed footprint offset bits (dy, dx)
localparam CNTB = 12;               // weight rows per key
localparam EVB  = CB + 2 * YB;      // spike event {c, y, x}
localparam INB  = EVB + 8;          // pixel event {c, y, x, value}
localparam ES   = WB + NA + 1 + 2 * DB;  // weight entry {w, toff, dy, dx}
localparam PW   = CNTB + WA;        // pointer word {rows, start}
localparam PROD = WB + 9;           // w * payload
localparam DW   = 172;              // descriptor word
localparam LB   = (P > 1) ? $clog2(P) : 1;
