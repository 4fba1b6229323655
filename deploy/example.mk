# thumbx deployment settings for `make deploy DEPLOY_VARS=deploy/example.mk` (copy this file and edit it).
# Every name here is a make variable; any of them can also be given on the command line.

# AWS CLI profiles (or leave both empty and switch credentials between the steps yourself).
COMPUTE_PROFILE = thumbx-compute
STORAGE_PROFILE = thumbx-storage
REGION = eu-west-1

COMPUTE_ACCOUNT = 111111111111
STORAGE_ACCOUNT = 222222222222
BUCKET = thumbx-example-images
# An existing role in account B: it manages the bucket and the key, and the storage stack is deployed as it.
ADMIN_ROLE = ThumbXAdminRole

# compute: the queue lives in account A (the default); storage: in account B.
QUEUE_PLACEMENT = compute
EXTERNAL_ID =
KMS_ENCRYPTION = false

WORKER_IMAGE = 111111111111.dkr.ecr.eu-west-1.amazonaws.com/thumbx:1.0.0
LAMBDA_IMAGE = 111111111111.dkr.ecr.eu-west-1.amazonaws.com/thumbx:1.0.0-lambda
VPC_ID = vpc-0123456789abcdef0
SUBNET_IDS = subnet-0123456789abcdef0,subnet-0fedcba9876543210

# Optional roles in account B (empty: none) and further Key=Value parameter overrides per stack.
STORAGE_PARAMS = UploaderRoleName= BackfillRoleName= BreakGlassRoleName=
COMPUTE_PARAMS =
