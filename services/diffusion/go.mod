module github.com/genailab/genailab/services/diffusion

go 1.26.0

require (
	github.com/genailab/genailab/gen v0.0.0
	github.com/genailab/genailab/pkg v0.0.0
)

require golang.org/x/sys v0.50.0 // indirect

replace github.com/genailab/genailab/pkg => ../../pkg

replace github.com/genailab/genailab/gen => ../../gen
