module agentlancer/loadgen

go 1.22
