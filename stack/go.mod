module github.com/genailab/genailab/stack

go 1.26.0
