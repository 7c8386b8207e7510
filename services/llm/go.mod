module github.com/genailab/genailab/services/llm

go 1.26.0
