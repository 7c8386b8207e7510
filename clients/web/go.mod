module github.com/genailab/genailab/clients/web

go 1.26.0
