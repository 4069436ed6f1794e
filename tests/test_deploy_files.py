"""The deployment files: Dockerfile, .dockerignore and the Flex Template metadata.

No image is built here (there is no Docker engine to build one): the files are parsed and
held against the code they deploy, so that the Beam and Python versions, the template's
parameters and the pipeline's options cannot drift apart unnoticed.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pathspec
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from dockerfile_parse import DockerfileParser
from dockerfile_parse.parser import image_from
from packaging.specifiers import SpecifierSet

from media.core.errors import ConfigurationError
from media.encode.encoders import ENCODER_NAMES, ENCODERS
from pipeline.options import LadderflowOptions, job_config, pubsub_path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
METADATA = REPO / "templates" / "metadata.json"
LAUNCH = REPO / "templates" / "launch.py"
SETUP = REPO / "setup.py"


# --- The Dockerfile, read with dockerfile-parse ------------------------------------------
# DockerfileParser reads the instructions (continuations joined, comments apart) and the
# ARG and ENV values in force at each one (`context_structure`, per stage). Two small
# readings stay here because no library gives them: the flags and paths of one COPY
# (Docker's own flag syntax) and the shell commands of one RUN (shlex, as sh splits them).


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the logical line, continuation lines joined
    line: int  # 1-based


@dataclass
class Stage:
    raw_image: str  # as written, ${ARG}s and all
    image: str  # with the global ARGs' defaults substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    env_values: dict[str, str] = field(default_factory=dict)  # in force at the stage's end
    arg_values: dict[str, str] = field(default_factory=dict)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Every ENV of the stage, later ones winning (values as written)."""
        return dict(self.env_values)

    def args(self) -> dict[str, str]:
        return dict(self.arg_values)

    def copies(self) -> list[Copy]:
        """COPY and ADD instructions, destinations made absolute against WORKDIR."""
        workdir = PurePosixPath("/")
        result = []
        for instruction in self.instructions:
            if instruction.keyword == "WORKDIR":
                workdir = workdir / instruction.args.strip()
            elif instruction.keyword in ("COPY", "ADD"):
                copy = parse_copy(instruction.args)
                copy.dest = str(workdir / copy.dest) + ("/" if copy.dest.endswith("/") else "")
                result.append(copy)
        return result

    def commands(self) -> list[list[str]]:
        """The shell commands of every RUN (split at &&, || and ;), as word lists."""
        return [command for i in self.all("RUN") for command in split_commands(i.args)]


@dataclass
class Copy:
    sources: list[str]
    dest: str
    source_stage: str | None  # --from=


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        matches = [s for s in self.stages if s.name == name]
        assert matches, f"no stage named {name!r}"
        return matches[0]


def parse_copy(args: str) -> Copy:
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    if words and words[0].startswith("["):  # the JSON form
        words = json.loads(" ".join(words))
    return Copy(sources=words[:-1], dest=words[-1], source_stage=flags.get("from"))


def split_commands(script: str) -> list[list[str]]:
    commands, current = [], []
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    for word in lexer:
        if word in ("&&", ";", "||"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [c for c in commands if c]


def parse_dockerfile(text: str) -> Dockerfile:
    """The stages of a Dockerfile, as DockerfileParser reads them (values as written)."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), env_replace=False)
    images = iter(parser.parent_images)  # FROM images, global ARGs substituted
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for entry, context in zip(parser.structure, parser.context_structure, strict=True):
        keyword, line = entry["instruction"], entry["startline"] + 1
        if keyword == "COMMENT":
            continue
        if keyword == "FROM":
            raw_image, name = image_from(entry["value"])
            assert raw_image, f"line {line}: FROM {entry['value']!r}"
            stages.append(Stage(raw_image, next(images), name))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may come before FROM"
            global_args = context.get_values(context_type="ARG")
        else:
            stage = stages[-1]
            stage.instructions.append(Instruction(keyword, entry["value"], line))
            stage.env_values = context.get_values(context_type="ENV")
            stage.arg_values = context.get_values(context_type="ARG")
    assert stages, "no FROM"
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_the_parser_reads_what_docker_reads():
    parsed = parse_dockerfile(
        "# a comment\nARG V=1.0\nFROM base:${V} AS one\n"
        'ENV A=1 \\\n    B="two words"\n# inside\nWORKDIR /w\nCOPY --from=one src/ ./dst/\n'
        'FROM $V\nENTRYPOINT ["/x"]\n'
    )
    assert parsed.global_args == {"V": "1.0"}
    assert [(s.image, s.name) for s in parsed.stages] == [("base:1.0", "one"), ("1.0", None)]
    assert parsed.stage("one").env() == {"A": "1", "B": "two words"}
    assert parsed.stage("one").copies() == [Copy(["src/"], "/w/dst/", "one")]
    assert split_commands("a b && c 'd && e'; f") == [["a", "b"], ["c", "d && e"], ["f"]]


# --- What setup.py says (read, never executed) -------------------------------------------


def setup_py() -> tuple[str, ast.Call]:
    """setup.py's BEAM_VERSION literal and its setup(...) call."""
    tree = ast.parse(SETUP.read_text(encoding="utf-8"))
    versions = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["BEAM_VERSION"]
        and isinstance(node.value, ast.Constant)
    ]
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
    ]
    assert len(versions) == 1 and len(calls) == 1
    return versions[0], calls[0]


def setup_keyword(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


def test_beam_version_has_one_source_setup_py(dockerfile):
    beam_version, call = setup_py()
    # setup.py pins apache-beam through BEAM_VERSION, and writes the version nowhere else.
    requirements = setup_keyword(call, "install_requires").elts
    pinned = [
        r
        for r in requirements
        if isinstance(r, ast.JoinedStr)
        and any(
            isinstance(v, ast.FormattedValue) and getattr(v.value, "id", "") == "BEAM_VERSION"
            for v in r.values
        )
        and str(r.values[0].value).startswith("apache-beam")
    ]
    assert len(pinned) == 1, "apache-beam must be pinned with BEAM_VERSION in setup.py"
    assert SETUP.read_text(encoding="utf-8").count(beam_version) == 1

    # The Dockerfile's ARG agrees, and is what picks the SDK image and is checked at build.
    assert dockerfile.global_args["BEAM_VERSION"] == beam_version
    sdk = [s for s in dockerfile.stages if s.image.startswith("apache/beam_python")]
    assert len(sdk) == 1
    assert "${BEAM_VERSION}" in sdk[0].raw_image
    assert sdk[0].image.endswith(f"_sdk:{beam_version}")
    assert "BEAM_VERSION" in dockerfile.final.args()
    assert any(
        "apache_beam" in run.args and "${BEAM_VERSION}" in run.args
        for run in dockerfile.final.all("RUN")
    )


def final_python(dockerfile: Dockerfile) -> str:
    """The X.Y of the interpreter the final image runs everything with."""
    venvs = [
        word[len("python") :]
        for command in dockerfile.final.commands()
        for i, word in enumerate(command)
        if re.fullmatch(r"python3\.\d+", word) and command[i + 1 : i + 3] == ["-m", "venv"]
    ]
    assert len(venvs) == 1, "the final stage should create one venv with a pythonX.Y"
    return venvs[0]


def test_one_python_version_everywhere(dockerfile):
    python = final_python(dockerfile)
    beam = [
        re.fullmatch(r"apache/beam_python(\d+\.\d+)_sdk:.+", s.image) for s in dockerfile.stages
    ]
    launcher = [
        re.fullmatch(r".*/python(\d)(\d+)-template-launcher-base(:.+)?", s.image)
        for s in dockerfile.stages
    ]
    beam_python = [m.group(1) for m in beam if m]
    launcher_python = [f"{m.group(1)}.{m.group(2)}" for m in launcher if m]
    assert beam_python == [python], "the Beam SDK image's Python is the image's Python"
    assert launcher_python == [python], "the template launcher's Python is the image's Python"
    # The interpreter comes from apt, and the build checks the version it got.
    installs = [c for c in dockerfile.final.commands() if c[:2] == ["apt-get", "install"]]
    assert any(f"python{python}" in c and f"python{python}-venv" in c for c in installs)
    major, minor = python.split(".")
    assert any(f"({major}, {minor})" in run.args for run in dockerfile.final.all("RUN"))
    # setup.py accepts it.
    _, call = setup_py()
    requires = setup_keyword(call, "python_requires").value
    assert SpecifierSet(requires).contains(python), (requires, python)


def test_final_image_is_an_nvidia_cuda_runtime_image(dockerfile):
    assert re.fullmatch(
        r"nvidia/cuda:\d+\.\d+(\.\d+)?-runtime-ubuntu\d+\.\d+", dockerfile.final.image
    ), dockerfile.final.image
    env = dockerfile.final.env()
    assert {"compute", "video", "utility"} <= set(env["NVIDIA_DRIVER_CAPABILITIES"].split(","))
    # The CUDA image's LD_LIBRARY_PATH is where Dataflow and GKE mount the driver: keep it.
    assert "/usr/local/nvidia/lib64" in env.get("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")


def test_beam_boot_and_template_launcher_come_from_their_images(dockerfile):
    copies = {c.dest: c for c in dockerfile.final.copies() if c.source_stage}
    boot = copies["/opt/apache/beam"]
    assert boot.sources == ["/opt/apache/beam"]
    assert dockerfile.stage(boot.source_stage).image.startswith("apache/beam_python")
    launcher = copies["/opt/google/dataflow/python_template_launcher"]
    assert launcher.sources == ["/opt/google/dataflow/python_template_launcher"]
    assert dockerfile.stage(launcher.source_stage).image.startswith(
        "gcr.io/dataflow-templates-base/"
    )


def test_the_build_checks_that_ffmpeg_has_every_encoder(dockerfile):
    checks = " ".join(
        run.args for run in dockerfile.final.all("RUN") if "imageio_ffmpeg" in run.args
    )
    missing = [e.codec for e in ENCODERS.values() if not re.search(rf"\b{e.codec}\b", checks)]
    assert not missing, f"the image build does not check FFmpeg for {missing}"


def test_entrypoint_is_the_beam_boot_program(dockerfile):
    entrypoints = dockerfile.final.all("ENTRYPOINT")
    assert entrypoints, "no ENTRYPOINT in the final stage"
    assert json.loads(entrypoints[-1].args) == ["/opt/apache/beam/boot"]


def test_the_boot_program_runs_the_python_that_has_the_packages(dockerfile):
    env = dockerfile.final.env()
    venv = env.get("VIRTUAL_ENV")
    if venv is None:
        pytest.skip("no virtual environment: packages go to the system Python")
    assert env["PATH"].startswith(f"{venv}/bin:")
    assert any(command[-1] == venv and "venv" in command for command in dockerfile.final.commands())
    # Else boot makes a fresh venv per worker that does not see the packages in this one.
    assert env.get("RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT") == "1"


def test_the_project_is_installed_then_pip_check_runs(dockerfile):
    commands = dockerfile.final.commands()

    def index(predicate) -> int:
        found = [i for i, c in enumerate(commands) if predicate(c)]
        assert found, "not in any RUN"
        return found[0]

    install = index(
        lambda c: (
            c[:2] == ["pip", "install"] and c[-1] == "." and "--no-cache-dir" in c and "-e" not in c
        )
    )
    check = index(lambda c: c == ["pip", "check"])
    assert install < check
    # The whole project is copied in before it is installed.
    steps = dockerfile.final.instructions
    copy_all = [
        n
        for n, i in enumerate(steps)
        if i.keyword == "COPY"
        and parse_copy(i.args).sources == ["."]
        and not parse_copy(i.args).source_stage
    ]
    install_run = [
        n
        for n, i in enumerate(steps)
        if i.keyword == "RUN"
        and ["pip", "install", "--no-cache-dir", "."] in split_commands(i.args)
    ]
    assert copy_all and install_run and copy_all[0] < install_run[0]


def repo_path_of(image_path: str, dockerfile: Dockerfile) -> Path:
    """The file in this repository that the final stage copies to `image_path`."""
    for copy in reversed(dockerfile.final.copies()):
        if copy.source_stage:
            continue
        dest = copy.dest.rstrip("/")
        for source in copy.sources:
            if image_path == dest and not source.endswith("/") and source != ".":
                return REPO / source
            if image_path.startswith(dest + "/"):
                relative = image_path[len(dest) + 1 :]
                base = REPO / source
                if source == "." or base.is_dir():
                    return base / relative
                if copy.dest.endswith("/") and relative == Path(source).name:
                    return base
    raise AssertionError(f"nothing is copied to {image_path}")


@pytest.mark.parametrize(
    "variable, repo_file",
    [
        ("FLEX_TEMPLATE_PYTHON_PY_FILE", "templates/launch.py"),
        ("FLEX_TEMPLATE_PYTHON_SETUP_FILE", "setup.py"),
    ],
)
def test_flex_template_files_are_in_the_image(dockerfile, variable, repo_file):
    image_path = dockerfile.final.env()[variable]
    assert image_path.startswith("/"), f"{variable} should be absolute"
    source = repo_path_of(image_path, dockerfile)
    assert source.resolve() == (REPO / repo_file).resolve()
    assert source.is_file()
    assert not dockerignored(repo_file), f"{repo_file} is left out of the build context"


def test_launch_py_runs_the_pipeline_command():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(LAUNCH), "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "python -m pipeline" in proc.stdout and "--subscription" in proc.stdout


# --- .dockerignore ---------------------------------------------------------------------


def dockerignore_spec() -> pathspec.PathSpec:
    """.dockerignore as a pathspec, in Docker's meaning, not git's.

    Docker (moby/patternmatcher) anchors every pattern at the root of the build context
    and cleans it (a leading or trailing / means nothing), where gitignore lets a pattern
    without a slash match at any depth and lets a trailing / mean "folders only". Docker's
    *, ?, [...] and ** are gitignore's, and in both the last matching pattern wins and a
    pattern that matches a folder leaves out all under it. So each line is cleaned and
    anchored with a leading / and read with pathspec's gitignore patterns. A PathSpec,
    not a GitIgnoreSpec: Docker lets a later ! pattern bring back a file inside an
    excluded folder, which git does not. (The repository has no .gcloudignore; one would
    follow gitignore's rules, `gcloud topic gcloudignore`, and want a GitIgnoreSpec.)
    """
    lines = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        cleaned = str(PurePosixPath("/", line.lstrip("!").strip()))  # anchored, cleaned
        lines.append(("!" if negate else "") + cleaned)
    return pathspec.PathSpec.from_lines("gitignore", lines)


def dockerignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative to the repository) out of the context: the
    last pattern matching it, or a folder above it, decides."""
    return dockerignore_spec().match_file(path)


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        "tests/browser/node_modules/hls.js/package.json",
        "pipeline/__pycache__/graph.cpython-311.pyc",
        "out/title/master.m3u8",
        ".pytest_cache/v/cache/nodeids",
        "ladderflow.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_leaves_out(path):
    assert dockerignored(path)


def test_dockerignore_patterns_hold_at_the_context_root_only():
    # Docker's meaning: `build` and `out` are the top-level folders; git's would also
    # leave out a package's own build/ or out/ folder.
    assert dockerignored("build/lib/media/__init__.py")
    assert not dockerignored("media/build/__init__.py")
    assert not dockerignored("pipeline/out/__init__.py")


def test_dockerignore_keeps_what_the_image_needs():
    needed = ["setup.py", "pyproject.toml", "templates/launch.py", "templates/metadata.json"]
    for package in ("media", "pipeline", "transforms"):
        for folder, dirs, files in os.walk(REPO / package):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            needed += [
                str(Path(folder, f).relative_to(REPO))
                for f in files
                if not f.endswith((".pyc", ".pyo"))
            ]
    assert "media/report/assets/hls.min.js" in needed  # package_data rides along
    left_out = [path for path in needed if dockerignored(path)]
    assert not left_out


# --- templates/metadata.json ---------------------------------------------------------------

# google.dataflow.v1beta3 TemplateMetadata / ParameterMetadata, as JSON.
TEMPLATE_KEYS = {
    "name",
    "description",
    "parameters",
    "streaming",
    "supportsAtLeastOnce",
    "supportsExactlyOnce",
    "defaultStreamingMode",
}
PARAMETER_KEYS = {
    "name",
    "label",
    "helpText",
    "isOptional",
    "regexes",
    "paramType",
    "customMetadata",
    "groupName",
    "parentName",
    "parentTriggerValues",
    "enumOptions",
    "defaultValue",
    "hiddenUi",
}
PARAM_TYPES = {
    "DEFAULT",
    "TEXT",
    "GCS_READ_BUCKET",
    "GCS_WRITE_BUCKET",
    "GCS_READ_FILE",
    "GCS_WRITE_FILE",
    "GCS_READ_FOLDER",
    "GCS_WRITE_FOLDER",
    "PUBSUB_TOPIC",
    "PUBSUB_SUBSCRIPTION",
    "BIGQUERY_TABLE",
    "JAVASCRIPT_UDF_FILE",
    "SERVICE_ACCOUNT",
    "MACHINE_TYPE",
    "KMS_KEY_NAME",
    "WORKER_REGION",
    "WORKER_ZONE",
    "BOOLEAN",
    "ENUM",
    "NUMBER",
    "KAFKA_TOPIC",
    "KAFKA_READ_TOPIC",
    "KAFKA_WRITE_TOPIC",
}


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads(METADATA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parameters(metadata) -> dict[str, dict]:
    return {p["name"]: p for p in metadata["parameters"]}


def option_actions() -> dict[str, argparse.Action]:
    """Every LadderflowOptions option, by name without the dashes."""
    parser = argparse.ArgumentParser(add_help=False)
    LadderflowOptions._add_argparse_args(parser)
    return {a.option_strings[0][2:]: a for a in parser._actions if a.option_strings}


def load_launch():
    spec = importlib.util.spec_from_file_location("ladderflow_flex_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metadata_has_dataflows_schema(metadata):
    assert set(metadata) <= TEMPLATE_KEYS
    assert metadata["name"] and metadata["description"]
    for parameter in metadata["parameters"]:
        assert set(parameter) <= PARAMETER_KEYS, parameter["name"]
        assert re.fullmatch(r"[a-z][a-z0-9_]*", parameter["name"])
        assert parameter["label"].strip() and parameter["helpText"].strip(), parameter["name"]
        assert isinstance(parameter["isOptional"], bool)
        assert parameter.get("paramType", "TEXT") in PARAM_TYPES
        assert all(isinstance(r, str) for r in parameter.get("regexes", []))


def test_metadata_parses_as_the_dataflow_api_message():
    types = pytest.importorskip("google.cloud.dataflow_v1beta3.types")
    parsed = types.TemplateMetadata.from_json(METADATA.read_text(encoding="utf-8"))
    names = [p["name"] for p in json.loads(METADATA.read_text(encoding="utf-8"))["parameters"]]
    assert [p.name for p in parsed.parameters] == names


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="needs the Google Cloud CLI")
def test_gcloud_puts_every_parameter_in_the_template_spec(parameters):
    proc = subprocess.run(
        [
            "gcloud",
            "dataflow",
            "flex-template",
            "build",
            "gs://bucket/templates/ladderflow.json",
            "--image=europe-docker.pkg.dev/project/repo/ladderflow:test",
            "--sdk-language=PYTHON",
            f"--metadata-file={METADATA}",
            "--print-only",
            "--format=json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    spec = json.loads(proc.stdout)
    spec = json.loads(spec) if isinstance(spec, str) else spec  # printed as a JSON string
    assert spec["sdkInfo"]["language"] == "PYTHON"
    assert {p["name"]: p for p in spec["metadata"]["parameters"]} == parameters


def test_every_parameter_is_an_option_and_every_option_a_parameter(metadata):
    names = [p["name"] for p in metadata["parameters"]]
    assert len(names) == len(set(names))
    assert set(names) == set(option_actions())


def test_output_is_required_and_the_three_fronts_are_offered(parameters):
    assert parameters["output"]["isOptional"] is False
    for front in ("input", "subscription", "watch"):  # one of them is needed
        assert parameters[front]["isOptional"] is True
        assert "not two of them" in parameters[front]["helpText"]
    others = set(parameters) - {"output"}
    assert all(parameters[name]["isOptional"] for name in others)


def test_regexes_compile_and_are_anchored(metadata):
    for parameter in metadata["parameters"]:
        for regex in parameter.get("regexes", []):
            re.compile(regex)
            assert regex.startswith("^") and regex.endswith("$"), (parameter["name"], regex)


TOPICS = (
    ["projects/p/topics/titles-ready", "projects/my-proj/topics/T_1.x~y%z+w"],
    [
        "t",
        "titles-ready",
        "projects/p/subscriptions/sub",
        "projects/p/topics/ab",
        "projects/p/topics/1abc",
        "projects//topics/abc",
        "projects/p/topics/a/b",
    ],
)
SUBSCRIPTIONS = (
    ["projects/p/subscriptions/ladderflow-in"],
    [
        "ladderflow-in",
        "projects/p/topics/drops",
        "projects/p/subscriptions/x",
        "projects/p/subscriptions/9in",
    ],
)
FLOATS = (["4", "4.0", "0.1", "1.7", ".5", "3600"], ["", "abc", "-1", "1e3", "4 s", "1,5"])
INTS = (["0", "3", "128"], ["", "1.5", "-1", "three", "3 "])
BOOLS = (["true", "false"], ["", "yes", "True", "1", "--no_vmaf"])
PRESETS = (["ultrafast", "medium", "veryslow", "placebo"], ["", "Medium", "slowest", "medium "])
# Local paths are refused on purpose: the template runs on Dataflow, whose launcher and
# workers share no file system; gs:// is what both can read and write.
SAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "imf_assetmaps": (
        ["gs://studio/ov/ASSETMAP.xml", "gs://studio/ov/ASSETMAP.xml, gs://studio/vf2/", ""],
        ["ov/ASSETMAP.xml", "gs://studio/ov/ASSETMAP.xml,in/vf2"],
    ),
    "cpl": (
        ["urn:uuid:0b6b6a4e-8a33-4ea4-9a2b-7c1d2e3f4a5b",
         "0b6b6a4e-8a33-4ea4-9a2b-7c1d2e3f4a5b", ""],
        ["CPL.xml", "urn:uuid:not-a-uuid"],
    ),
    "input": (
        [
            "gs://studio/masters/film.mov",
            "gs://studio/in/*.mp4",
            "gs://studio/a.mp4,gs://studio/b.mov",
            "gs://studio/a.mp4, gs://other/b.mov",
        ],
        [
            "",
            "in/film.mov",
            "/data/film.mov",
            "gs://studio",
            "gs://studio/a.mp4,",
            "s3://studio/a.mp4",
            "gs://studio/a.mp4,/data/b.mov",
        ],
    ),
    "output": (
        ["gs://studio-out/titles", "gs://studio-out", "gs://studio-out/titles/"],
        ["", "out/", "/data/out", "s3://b/out", "gs://"],
    ),
    "watch": (["gs://studio-drop/in/", "gs://studio-drop"], ["", "drop/", "/data/drop"]),
    "subscription": SUBSCRIPTIONS,
    "notify_topic": TOPICS,
    "dead_letter_topic": TOPICS,
    "ladder": (["per-title", "fixed", "apple"], ["", "per_title", "Fixed", "adaptive"]),
    "preset": PRESETS,
    "encoder": (list(ENCODER_NAMES), ["", "nvenc", "h264_nvenc", "X264", "libx264"]),
    "codecs": (["h264", "h264,av1", "av1,hevc,h264"],
               ["", "H264", "h264,", "vp9", "h264;av1", "avc", "h264, av1"]),
    "hdr": (["tonemap", "keep"], ["", "Keep", "tone-map", "hdr10", "keep,tonemap"]),
    "allocation": (["constant", "optimal"], ["", "Optimal", "equal-slope", "constant,optimal"]),
    "segment_grid": (["shots", "even"], ["", "Shots", "fixed", "shots,even"]),
    "decoder": (["auto", "cpu", "nvdec"], ["", "cuda", "gpu", "CPU"]),
    "vmaf_backend": (["auto", "libvmaf", "torch"], ["", "gpu", "cuda", "vmaf-torch", "LIBVMAF"]),
    "trial_preset": PRESETS,
    "trial_crfs": (["19,26,33", "19, 26, 33", "20.5,30"], ["", "19;26", "19,,26", "a,b", "19,"]),
    "no_vmaf": BOOLS,
    "keep_work": BOOLS,
    **dict.fromkeys(
        (
            "segment_seconds",
            "crf",
            "tool_timeout_s",
            "top_vmaf",
            "min_kbps",
            "max_kbps",
            "step_ratio",
            "trial_fraction",
            "trial_seconds",
            "watch_interval_s",
            "max_duration_s",
            "title_timeout_s",
            "dedup_retention_s",
            "imf_settle_s",
            "allocation_max_drop",
            "min_segment_seconds",
        ),
        FLOATS,
    ),
    **dict.fromkeys(
        (
            "chunk_segments",
            "encoder_threads",
            "vmaf_subsample",
            "max_renditions",
            "audio_kbps",
            "max_attempts",
            "max_width",
            "max_height",
            "max_source_bytes",
        ),
        INTS,
    ),
}


def accepts(parameter: dict, value: str) -> bool:
    return all(re.search(regex, value) for regex in parameter.get("regexes", []))


def test_every_parameter_has_samples(parameters):
    assert set(SAMPLES) == set(parameters)
    assert all(parameters[name].get("regexes") for name in SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_regexes_accept_and_refuse_samples(parameters, name):
    good, bad = SAMPLES[name]
    assert [v for v in good if not accepts(parameters[name], v)] == []
    assert [v for v in bad if accepts(parameters[name], v)] == []


@pytest.mark.parametrize(
    "name, kind",
    [
        ("subscription", "subscriptions"),
        ("notify_topic", "topics"),
        ("dead_letter_topic", "topics"),
    ],
)
def test_pubsub_regexes_agree_with_the_pipeline(parameters, name, kind):
    good, bad = SUBSCRIPTIONS if kind == "subscriptions" else TOPICS
    for value in good + bad:
        try:
            pubsub_path(value, f"--{name}", kind)
            pipeline_accepts = True
        except ConfigurationError:
            pipeline_accepts = False
        assert accepts(parameters[name], value) == pipeline_accepts, value


# Options whose values the pipeline checks against a list of its own, not argparse choices.
VALUE_LISTS = {"encoder": ENCODER_NAMES}


def test_parameter_types_follow_the_options(parameters):
    for name, action in option_actions().items():
        kind = parameters[name].get("paramType", "TEXT")
        values = action.choices or VALUE_LISTS.get(name)
        if values:
            assert kind == "ENUM", name
            assert [o["value"] for o in parameters[name]["enumOptions"]] == list(values)
            assert all(accepts(parameters[name], v) for v in values)
        elif action.nargs == 0:
            assert kind == "BOOLEAN", name
        elif action.type in (int, float):
            assert kind == "NUMBER", name
        else:
            assert kind not in ("ENUM", "BOOLEAN", "NUMBER"), name


def test_default_values_are_the_options_defaults(parameters):
    for name, action in option_actions().items():
        parameter = parameters[name]
        if action.default in (None, ""):
            assert "defaultValue" not in parameter, name
            continue
        shown = parameter["defaultValue"]
        assert accepts(parameter, shown), name
        if action.nargs == 0:
            assert shown == str(action.default).lower(), name
        elif action.type in (int, float):
            assert action.type(shown) == action.default, name
        else:
            assert shown == action.default, name


def flex_launch_options(argv: list[str]) -> LadderflowOptions:
    """The options the pipeline sees when the template launcher passes `argv`."""
    return PipelineOptions(load_launch().flex_argv(argv)).view_as(LadderflowOptions)


def test_parameters_reach_the_pipeline_as_the_template_passes_them(parameters):
    actions = option_actions()
    argv = [f"--{name}={SAMPLES[name][0][0]}" for name in parameters]
    options = flex_launch_options(argv)
    for name, action in actions.items():
        value = SAMPLES[name][0][0]
        expected = (value == "true") if action.nargs == 0 else (action.type or str)(value)
        assert getattr(options, name) == expected, name


def test_the_template_defaults_make_a_valid_job(parameters):
    argv = [
        f"--{name}={p['defaultValue']}" for name, p in parameters.items() if "defaultValue" in p
    ]
    argv += ["--input=gs://studio/in/*.mov", "--output=gs://studio-out/titles"]
    config = job_config(PipelineOptions(load_launch().flex_argv(argv)))
    assert config == job_config(PipelineOptions(["--output", "gs://studio-out/titles"]))


def test_flex_argv_turns_boolean_parameters_into_flags():
    flex_argv = load_launch().flex_argv
    assert flex_argv(
        [
            "--no_vmaf=true",
            "--keep_work=False",
            "--runner=DataflowRunner",
            "--input=gs://b/a.mp4",
            "--keep_work",
            "--streaming",
        ]
    ) == [
        "--no_vmaf",
        "--runner=DataflowRunner",
        "--input=gs://b/a.mp4",
        "--keep_work",
        "--streaming",
    ]
    assert flex_launch_options(["--no_vmaf=TRUE"]).no_vmaf is True
    assert flex_launch_options(["--no_vmaf=false"]).no_vmaf is False
    with pytest.raises(SystemExit):  # a value that is neither is argparse's to refuse
        flex_launch_options(["--no_vmaf=maybe"])
