module github.com/genailab/genailab/services/llm

go 1.26.0

require github.com/genailab/genailab/pkg v0.0.0-00010101000000-000000000000

replace github.com/genailab/genailab/pkg => ../../pkg
