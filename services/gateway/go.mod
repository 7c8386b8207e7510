module github.com/genailab/genailab/services/gateway

go 1.26.0
