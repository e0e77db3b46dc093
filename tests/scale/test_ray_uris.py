"""`ferkit predict --engine ray` on object storage: photos read from and Parquet written to
`s3://` URIs, served by moto's S3 server on 127.0.0.1 (pyarrow's S3 file system, as on a
real bucket, with the endpoint in the URI's query)."""

from __future__ import annotations

import logging

import pytest

ray = pytest.importorskip("ray", reason="--engine ray needs ferkit[ray]")
pafs = pytest.importorskip("pyarrow.fs", reason="--engine ray needs ferkit[ray]")
moto_server = pytest.importorskip("moto.server", reason="the S3 test needs moto[server]")

from ferkit.cli import main
from ferkit.core.decoding import NOT_AN_IMAGE
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.scale.config import RayConfig
from ferkit.scale.ray_engine import predict_on_ray
from tests.conftest import EXAMPLES
from tests.ray_cluster import local_cluster
from tests.scale.test_ray_engine import local_rows

# moto takes any keys; without keys the AWS SDK would ask the cloud's metadata address
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
PHOTOS = ("astronaut.jpg", "chelsea.jpg")


@pytest.fixture(scope="module")
def s3():
    """The query every URI carries: moto's S3 on a free 127.0.0.1 port, with a bucket
    `photos` (the two photos, a corrupt JPEG and a text file under in/) and an empty
    bucket `results`; the server stops with the module."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        with local_cluster(FAKE_AWS):
            host, port = server.get_host_and_port()
            assert host == "127.0.0.1"
            query = f"?endpoint_override={host}:{port}&scheme=http"
            fs, _ = pafs.FileSystem.from_uri(f"s3://photos{query}&allow_bucket_creation=true")
            for bucket in ("photos", "results"):
                fs.create_dir(bucket)
            files = {name: (EXAMPLES / name).read_bytes() for name in PHOTOS}
            files |= {"broken.jpg": b"\xff\xd8\xff not really a jpeg", "notes.txt": b"hi"}
            for name, data in files.items():
                with fs.open_output_stream(f"photos/in/{name}") as f:
                    f.write(data)
            yield query
    finally:
        server.stop()


def test_photos_from_a_bucket_give_the_local_engines_faces_in_a_bucket(s3):
    out = f"s3://results/run{s3}"
    summary = predict_on_ray(RayConfig(inputs=(f"s3://photos/in{s3}",), out=out,
                                       actor_cpus=0.5))  # fmt: skip
    rows = {r["path"]: r for r in pq_rows(out)}
    assert sorted(rows) == [f"s3://photos/in/{n}" for n in ("astronaut.jpg", "broken.jpg",
                                                             "chelsea.jpg")]  # fmt: skip
    local, _ = local_rows([str(EXAMPLES / "astronaut.jpg")])
    mine = rows["s3://photos/in/astronaut.jpg"]
    theirs = next(iter(local.values()))
    assert mine["status"] == "face" and mine["label"] == theirs["label"] == "happy"
    assert [mine[k] for k in ("x", "y", "width", "height")] == theirs["box"]
    assert [mine[k] for k in LABELS] == [theirs["probs"][k] for k in LABELS]  # exactly
    assert rows["s3://photos/in/chelsea.jpg"]["status"] == "no_face"
    broken = "s3://photos/in/broken.jpg"
    assert (rows[broken]["status"], rows[broken]["error"]) == ("error", f"{broken}: {NOT_AN_IMAGE}")
    assert (summary.images, summary.faces) == (3, 1)
    assert summary.no_face == ["s3://photos/in/chelsea.jpg"] and len(summary.errors) == 1


def pq_rows(uri: str) -> list[dict]:
    import pyarrow.dataset as pds

    return pds.dataset(uri, format="parquet").to_table().to_pylist()


def test_a_bucket_that_holds_results_is_refused_or_resumed_and_file_systems_do_not_mix(s3, capsys):
    out = f"s3://results/again{s3}"
    assert main(["predict", "--engine", "ray", "--actor-cpus", "0.5",
                 f"s3://photos/in/astronaut.jpg{s3}", "--out", out]) == 0  # fmt: skip
    assert "1 images, 1 faces, 0 with no face, 0 errors" in capsys.readouterr().err
    assert main(["predict", "--engine", "ray", f"s3://photos/in{s3}", "--out", out]) == 2
    assert "already holds Parquet results; give --resume" in capsys.readouterr().err
    resumed = ["predict", "--engine", "ray", "--actor-cpus", "0.5", "--resume"]
    assert main([*resumed, f"s3://photos/in{s3}", "--out", out]) == 1  # broken.jpg
    err = capsys.readouterr().err
    assert "3 images, 1 faces, 1 with no face, 1 errors" in err
    assert "; 1 files were done already" in err  # astronaut.jpg, by its s3:// path
    with pytest.raises(FerkitError, match=r"^foo://x: Unrecognized filesystem type in URI"):
        predict_on_ray(RayConfig(inputs=("foo://x",), out=f"s3://results/x{s3}"))
    with pytest.raises(FerkitError, match=r"^s3://photos/gone\?.*: not found$"):
        predict_on_ray(RayConfig(inputs=(f"s3://photos/gone{s3}",), out=f"s3://results/x{s3}"))
    with pytest.raises(FerkitError, match=r"one file system only .*, not local and s3$"):
        predict_on_ray(RayConfig(inputs=(str(EXAMPLES / "astronaut.jpg"), f"s3://photos/in{s3}"),
                                 out=f"s3://results/mixed{s3}"))  # fmt: skip
