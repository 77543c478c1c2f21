"""cloudbuild.yaml and the Dockerfile (issue 17 §4): the build's steps, substitutions, images and timeouts,
and an image built on a slim Python base that installs the extra chosen by a build argument and runs as a
user without privileges. Validated as text: neither Docker nor gcloud is needed."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from tests.helpers import REPO

SUBSTITUTION = re.compile(r"\$\{?(_[A-Z0-9_]+)")  # $_NAME or ${_NAME}
BUILT_IN = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "REPO_NAME", "BRANCH_NAME", "TAG_NAME",
            "COMMIT_SHA", "SHORT_SHA", "REVISION_ID", "TRIGGER_NAME", "SERVICE_ACCOUNT"}


@pytest.fixture(scope="module")
def build() -> dict:
    with open(os.path.join(REPO, "cloudbuild.yaml"), encoding="utf-8") as stream:
        return yaml.safe_load(stream)


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    with open(os.path.join(REPO, "Dockerfile"), encoding="utf-8") as stream:
        text = stream.read().replace("\\\n", " ")  # continuation lines joined
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _seconds(value: str) -> int:
    assert re.fullmatch(r"\d+s", value), f"timeouts are written as '<seconds>s', got {value!r}"
    return int(value[:-1])


def test_steps_test_then_build_and_push_the_image_then_train_on_a_tpu(build):
    ids = [step["id"] for step in build["steps"]]
    assert ids == ["tests", "image-build", "image-push", "train-tpu"]
    steps = {step["id"]: step for step in build["steps"]}
    assert steps["tests"]["args"] == ["scripts/test.sh"]
    assert steps["image-build"]["args"][0] == "build" and "--build-arg" in steps["image-build"]["args"]
    assert steps["image-push"]["args"][:2] == ["push", "--all-tags"]
    script = steps["train-tpu"]["args"][-1]
    for command in ("gcloud compute tpus tpu-vm create", "gcloud compute tpus tpu-vm ssh",
                    "gcloud compute tpus tpu-vm delete", "--strategy=tpu", "runtime.tpu=local"):
        assert command in script
    assert "trap" in script.split("create")[0]  # the VM is deleted even when training fails


def test_every_substitution_is_declared_with_an_underscore_and_used(build):
    declared = build["substitutions"]
    assert all(name.startswith("_") for name in declared), "user substitutions must start with '_'"
    text = yaml.safe_dump({key: value for key, value in build.items() if key != "substitutions"})
    used = set(SUBSTITUTION.findall(text)) | {name for value in declared.values()
                                              for name in SUBSTITUTION.findall(str(value))}
    assert used - set(declared) == set(), "used but not declared"
    assert set(declared) - used == set(), "declared but never used"
    for required in ("_PROJECT", "_ZONE", "_REGION", "_TPU_TYPE", "_BUCKET"):
        assert required in declared
    # Substitutions built from others need dynamic substitutions; built-ins are the only other names.
    assert build["options"]["dynamicSubstitutions"] is True
    others = {name for name in re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", yaml.safe_dump(build)) if not name.startswith("_")}
    assert others <= BUILT_IN


def test_images_are_the_ones_built_and_timeouts_cover_the_steps(build):
    built = build["steps"][1]["args"]
    tags = [built[i + 1] for i, arg in enumerate(built) if arg == "-t"]
    assert build["images"] and sorted(build["images"]) == sorted(tags)
    step_total = sum(_seconds(step["timeout"]) for step in build["steps"])
    assert all("timeout" in step for step in build["steps"])
    assert _seconds(build["timeout"]) >= step_total


def test_dockerfile_slim_base_extras_by_build_argument_and_a_user_without_privileges(dockerfile):
    base = next(line for line in dockerfile if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.\d+-slim", base)
    arguments = [line.split()[1].split("=")[0] for line in dockerfile if line.startswith("ARG ")]
    assert "EXTRAS" in arguments
    install = next(line for line in dockerfile if line.startswith("RUN ") and "pip install" in line)
    assert '".[${EXTRAS}]"' in install and "cpu|gpu|tpu" in install  # any other value is refused
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any("useradd" in line and users[-1] in line for line in dockerfile)
    assert dockerfile.index(f"USER {users[-1]}") < dockerfile.index(next(line for line in dockerfile
                                                                        if line.startswith("ENTRYPOINT")))
    assert re.search(r'ENTRYPOINT \["python", "-m", "tfxmed"\]', "\n".join(dockerfile))


def test_the_build_argument_names_extras_setup_cfg_declares(dockerfile):
    import configparser

    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    extras = set(parser["options.extras_require"])
    assert {"cpu", "gpu", "tpu"} <= extras
