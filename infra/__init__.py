"""Deployment definitions (CloudFormation/SAM) and the tools around them; never shipped to Lambda."""
