PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean bench

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/aws_calls.py
	$(BIN)/python bench/list_scaling.py

clean:
	rm -rf $(VENV) .local

# Deploying to AWS (README: Deploying to AWS). `make package STAGE=prod`: dist/prod/sam.yaml + deployment.zip.
# `make deploy STAGE=prod ARTIFACT_BUCKET=my-artifacts [HOST_CLUSTER_ARNS=arn,... HOST_CLUSTER_NAME=... ALARM_EMAIL=...]`
# needs the AWS CLI and credentials; parameters left unset keep their deployed values.
STAGE ?= dev
STACK_NAME ?= loft-serverless-$(STAGE)
DIST := dist/$(STAGE)
STACK_PARAMETERS := $(if $(HOST_CLUSTER_ARNS),HostClusterArns=$(HOST_CLUSTER_ARNS)) \
	$(if $(HOST_CLUSTER_NAME),HostClusterName=$(HOST_CLUSTER_NAME)) $(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL))

.PHONY: package deploy

package: $(STAMP)
	$(BIN)/python -m infra.package --stage $(STAGE) --out $(DIST)

deploy: package
	@test -n "$(ARTIFACT_BUCKET)" || { echo "set ARTIFACT_BUCKET: the S3 bucket that receives the Lambda code" >&2; exit 2; }
	aws cloudformation package --template-file $(DIST)/sam.yaml --s3-bucket $(ARTIFACT_BUCKET) \
		--s3-prefix $(STACK_NAME) --output-template-file $(DIST)/packaged.yaml
	aws cloudformation deploy --template-file $(DIST)/packaged.yaml --stack-name $(STACK_NAME) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		$(if $(strip $(STACK_PARAMETERS)),--parameter-overrides $(strip $(STACK_PARAMETERS)))
	aws cloudformation describe-stacks --stack-name $(STACK_NAME) --query "Stacks[0].Outputs" --output table
