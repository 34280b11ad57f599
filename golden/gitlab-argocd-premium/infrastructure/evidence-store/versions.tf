# Exact provider versions (bump them in generator/data/pins.yml): a plan never picks up a new provider by itself.
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
