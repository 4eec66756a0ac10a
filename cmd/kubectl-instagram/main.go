// Command kubectl-instagram is the kubectl plugin of the instagram-operator:
// `kubectl instagram status|login|refresh|send|tail|contacts`. Put it on
// PATH (or install it with krew from plugins/instagram.yaml) and kubectl
// finds it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/leadchat/instagram-operator/internal/kubectlplugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := kubectlplugin.Main(ctx, os.Args[1:], kubectlplugin.Options{})
	stop()
	os.Exit(code)
}
