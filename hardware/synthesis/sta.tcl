# OpenSTA timing of the mapped core (hardware/synthesis/flow.py fills the placeholders).
read_liberty {liberty}
read_liberty {sram_liberty}
read_verilog {netlist}
link_design snn_core
source {sdc}
report_checks -path_delay max -format full_clock_expanded -digits 3
puts "SPIKEBENCH_WNS [sta::format_time [sta::worst_slack_cmd max] 4]"
puts "SPIKEBENCH_TNS [sta::format_time [sta::total_negative_slack_cmd max] 4]"
