"""AWS Bedrock Converse / ConverseStream: requests built by ``request`` and signed by
``signing`` with botocore's SigV4 signer, answers read by ``response``, errors by ``errors``,
the binary event stream decoded by ``framing`` with botocore's parser and translated by
``stream``; embeddings with Amazon Titan through ``InvokeModel``."""
