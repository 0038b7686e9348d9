"""Code that runs in AWS Lambda: plain Python files, each packaged alone, no Pulumi import."""
