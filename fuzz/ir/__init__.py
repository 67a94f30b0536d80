"""The IR every stage speaks: graphs, the rule DSL, operator names, call templates, records, rules."""
