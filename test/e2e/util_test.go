package e2e

import "os"

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
