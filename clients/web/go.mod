module github.com/genailab/genailab/clients/web

go 1.26.0

replace github.com/genailab/genailab/pkg => ../../pkg

require github.com/genailab/genailab/pkg v0.0.0
