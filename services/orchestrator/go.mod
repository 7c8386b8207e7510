module github.com/genailab/genailab/services/orchestrator

go 1.26.0
