# Timing constraints of snn_core (flow.py fills the placeholders). Inputs come from and outputs go
# to registers of the host on the same clock; the clock is ideal (no clock tree synthesised).
create_clock -name clk -period {period_ns} [get_ports clk]
set_input_delay {io_delay_ns} -clock clk [delete_from_list [all_inputs] [get_ports clk]]
set_output_delay {io_delay_ns} -clock clk [all_outputs]
set_input_transition {input_slew_ns} [all_inputs]
set_load {output_load_pf} [all_outputs]
