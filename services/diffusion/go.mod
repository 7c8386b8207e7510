module github.com/genailab/genailab/services/diffusion

go 1.26.0
