"""Other tools' formats: VBench's prompt file, folder naming and manifests."""
