// Command tollgate is the Kubernetes-native LLM gateway: one binary with
// two roles.
//
//	tollgate controller   reconcile the CRs, compile and push the routing table
//	tollgate dataplane    serve /v1/chat/completions, /v1/messages, /v1/embeddings, /v1/models, /mcp
//	tollgate version      print the version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"tollgate.dev/tollgate/controllers"
	"tollgate.dev/tollgate/dataplane"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "controller":
		err = controllers.Main(ctx, os.Args[2:])
	case "dataplane":
		err = dataplane.Main(ctx, os.Args[2:])
	case "version", "--version":
		fmt.Println(version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "tollgate: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: tollgate <command> [flags]

Commands:
  controller   reconcile LLMProvider, Route, VirtualKey and MCPTool resources and push the routing table
  dataplane    serve the OpenAI- and Anthropic-compatible gateway API and /mcp
  version      print the version

Run "tollgate <command> -h" for the flags of a command.
`)
}
