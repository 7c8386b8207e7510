// Command etcd is etcd's own server (go.etcd.io/etcd/server/v3/etcdmain), built from the
// version pinned in tools/go.mod by `make tools` into bin/etcd, so that the orchestrator's
// tests run a real etcd cluster (pkg/testenv.Etcd) without a system package. Its flags are
// etcd's: `bin/etcd --help`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
