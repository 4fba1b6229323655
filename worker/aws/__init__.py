"""The AWS boundary: sessions and credentials, S3 and SQS behind small interfaces, error mapping."""
