# The two things a user runs (see README.md). Each does its own set-up first.
SHELL := /bin/bash
.PHONY: setup demo test test-all gazebo-check

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	bash scripts/test.sh

gazebo-check:
	bash scripts/gazebo_check.sh
