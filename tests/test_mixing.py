"""Training on several data sets (populations) at once: each set's share of an epoch, the order the
images are drawn in, the config that carries the sets, and a brief run on two of them."""
import json
from dataclasses import asdict

import numpy as np
import pytest

from digitrec.training.recipes import MIN_SHARE, PRESETS, TrainConfig
from digitrec.training.train import epoch_order, epoch_shares, make_dataset

SIZES = {"mnist": 60000, "ardis": 6600, "usps": 7291}


def test_small_sets_make_a_fixed_share_of_every_epoch():
    shares = epoch_shares(SIZES)
    assert shares["ardis"] == shares["usps"] == MIN_SHARE  # 8.9% and 9.9% by size alone
    assert shares["mnist"] == pytest.approx(1 - 2 * MIN_SHARE)
    assert sum(shares.values()) == pytest.approx(1)


def test_shares_follow_the_sizes_where_no_set_is_small():
    shares = epoch_shares({"a": 300, "b": 200, "c": 500})
    assert shares == pytest.approx({"a": 0.3, "b": 0.2, "c": 0.5})


def test_digits_made_for_the_run_are_not_lifted_to_the_floor():
    shares = epoch_shares({**SIZES, "small crops": 3000}, floored=list(SIZES))
    assert shares["ardis"] == MIN_SHARE
    assert shares["small crops"] < MIN_SHARE
    assert shares["small crops"] / shares["mnist"] == pytest.approx(3000 / 60000)


def test_the_floor_never_exceeds_an_even_split():
    shares = epoch_shares({"a": 1000, "b": 10, "c": 10, "d": 10, "e": 10, "f": 10, "g": 10, "h": 10, "i": 10})
    assert all(v == pytest.approx(1 / 9) for v in shares.values())


def _groups():
    return np.array(["mnist"] * 600 + ["ardis"] * 66 + ["usps"] * 73)


def test_each_epoch_draws_each_set_by_its_share():
    groups = _groups()
    shares = epoch_shares({"mnist": 600, "ardis": 66, "usps": 73})
    order = epoch_order(groups, shares, epochs=3, seed=1)
    n = len(groups)
    assert len(order) == 3 * n
    for e in range(3):
        drawn = groups[order[e * n: (e + 1) * n]]
        for name, share in shares.items():
            assert abs((drawn == name).sum() - share * n) <= 1


def test_members_are_drawn_evenly_a_small_set_repeating_a_big_one_spreading():
    groups = _groups()
    order = epoch_order(groups, epoch_shares({"mnist": 600, "ardis": 66, "usps": 73}), epochs=4, seed=2)
    n = len(groups)
    for epochs in range(1, 5):
        counts = np.bincount(order[: epochs * n], minlength=n)
        for name in ("mnist", "ardis", "usps"):
            mine = counts[groups == name]
            assert mine.max() - mine.min() <= 1, (name, epochs)
    first = np.bincount(order[:n], minlength=n)
    assert first[groups == "ardis"].min() >= 1  # the small set: all of it, some twice, each epoch
    assert first[groups == "mnist"].max() == 1  # the big one: part of it, none twice


def test_the_order_depends_on_the_seed_only():
    groups, shares = _groups(), epoch_shares({"mnist": 600, "ardis": 66, "usps": 73})
    a, b = epoch_order(groups, shares, 2, seed=5), epoch_order(groups, shares, 2, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, epoch_order(groups, shares, 2, seed=6))


def test_the_dataset_follows_the_order():
    x = np.arange(20, dtype=np.uint8)[:, None, None].repeat(28, 1).repeat(28, 2)
    y = np.arange(20) % 10
    order = np.array([3, 3, 17, 0, 5, 19, 3, 8])
    batches = [b[0].numpy()[:, 0, 0, 0] * 255 for b in make_dataset(x, y, 4, shuffle=True, order=order)]
    np.testing.assert_allclose(np.concatenate(batches), order, atol=1e-3)


def test_the_sets_come_from_the_preset_or_the_config():
    assert TrainConfig(preset="best").resolved().datasets == ["mnist", "ardis", "usps", "cvl"]
    assert TrainConfig(preset="best").resolved().nondigits > 0 == TrainConfig(preset="fast").resolved().nondigits
    assert TrainConfig(preset="fast").resolved().datasets == list(PRESETS["fast"].datasets) == ["mnist"]
    assert TrainConfig(preset="best", datasets="USPS, mnist").resolved().datasets == ["usps", "mnist"]
    # what the Train page sends a training process, as JSON, arrives whole
    sent = asdict(TrainConfig(preset="fast", datasets=["mnist", "ardis"]).resolved())
    assert TrainConfig(**json.loads(json.dumps(sent))).resolved().datasets == ["mnist", "ardis"]


def test_an_unknown_set_is_refused_before_anything_is_built(monkeypatch):
    from digitrec.training import train as train_mod
    from digitrec.training.datasets import DataError

    monkeypatch.setattr(train_mod, "build_model", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(DataError, match="unknown data set 'kuzushiji'"):
        train_mod.train(TrainConfig(preset="fast", datasets="mnist,kuzushiji"), save=False)


@pytest.mark.slow
def test_a_brief_run_on_two_sets_names_both_on_its_card(mnist, tmp_path):
    from digitrec.training.datasets import DATASETS, DataError
    from digitrec.training.train import train

    try:
        result = train(TrainConfig(preset="fast", datasets="mnist,usps", limit=1500, small_mix=0.1,
                                   out=str(tmp_path / "two.keras"), command="test"), mnist=mnist)
    except DataError as exc:
        pytest.skip(f"USPS is not available: {exc}")
    card = json.loads((tmp_path / "two.json").read_text())
    assert list(card["datasets"]) == ["mnist", "usps"]
    assert card["datasets"]["usps"]["train_images"] == 1500
    assert card["epoch_shares"]["usps"] == pytest.approx(card["epoch_shares"]["mnist"])
    assert card["small_crops"]["images"] > 250
    for name in ("mnist", "usps"):
        for file, digest in DATASETS[name].checksums.items():
            assert card["data_sha256"][file] == digest
    assert card["tests"]["usps"]["n"] == 2007 and card["tests"]["mnist"]["n"] == 10000
    assert card["tests"]["usps"]["accuracy"] > 0.7  # 3000 digits, one epoch: far above chance
    assert card["test"] == {"dataset": "mnist", **{k: card["tests"]["mnist"][k] for k in ("accuracy", "loss", "n")}}
    assert result.card["tests"] == card["tests"]


def test_the_train_page_sends_the_chosen_sets_to_the_training(fake_worker, models_dir):
    from digitrec.server import jobs
    from tests.conftest import train_page

    fake_worker("done")
    at = train_page()
    chooser = at.multiselect(key="datasets-fast")
    assert chooser.value == ["mnist"]  # the fast preset's
    chooser.set_value(["mnist", "usps"]).run()
    at.button(key="start").click().run()
    assert not at.exception
    jobs.wait(60)
    assert jobs.current().config.datasets == ["mnist", "usps"]
    at.multiselect(key="datasets-fast").set_value([]).run()
    assert at.button(key="start").disabled  # no set, no training
