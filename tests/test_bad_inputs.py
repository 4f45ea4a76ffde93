"""Bad inputs against the whole public API: every one must get a clear error naming the argument.

The registry `CASES` maps each public function (found from the modules' `__all__`, so a new public
function is picked up automatically) to bad inputs: `(label, call, argument)`. A case passes when
`call()` raises ValueError, TypeError or FileNotFoundError whose message names `argument`, within
`_SECONDS` (a hang is a failure). A public function with no case fails
`test_every_public_function_has_bad_input_cases`; functions without inputs to get wrong are listed in
`NO_INPUTS` with the reason. Ranges are also probed with hypothesis (`test_*_property`). The counts
(inputs tried, clear errors) are printed at the end of the test session (tests/conftest.py).
"""

import inspect
import pickle
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widenet import compare, data, harness, losses, networks, observables, plots, results, schedules, spectra, store
from widenet.experiment import distributed
from widenet.experiment import train as train_module
from widenet.theory import catapult, l2_homogeneous, ode, oscillatory, special, symbolic

MODULES = [
    data, networks, losses, schedules, spectra, observables, harness, plots, store, results, compare,
    l2_homogeneous, ode, symbolic, catapult, oscillatory, special, train_module, distributed,
]  # fmt: skip

NO_INPUTS = {
    "widenet.theory.symbolic.symbols": "takes no arguments",
    "widenet.info.versions": "takes no arguments",
}

COUNTS = {"tried": 0, "clear": 0}
_SECONDS = 20

K = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]])
Y = jnp.ones((3, 1))
F0 = jnp.zeros((3, 1))
TS = jnp.linspace(0.0, 1.0, 4)
NET = networks.mlp((8,), 1)
PARAMS = NET.init(jax.random.PRNGKey(0), 2)
X = jax.random.normal(jax.random.PRNGKey(1), (5, 2))
DATA = data.Dataset(np.asarray(X), np.ones((5, 1)), np.asarray(X[:2]), np.ones((2, 1)))
KEY = jax.random.PRNGKey(2)
NOT_PSD = jnp.array([[1.0, 2.0], [2.0, 1.0]])
KERNEL = jnp.array([[2.0, 0.5], [0.5, 1.0]])
Y2 = jnp.ones((2, 1))
WEIGHTS = jnp.ones((4, 3))


def _write(path, payload):
    path.write_bytes(payload)
    return path


def _digits():
    return data.digits(key=KEY, n_train=6, n_test=0)


def _spiral():
    return data.spiral(KEY, n_per_class=3, n_classes=3)


def _unlabelled():
    d = _spiral()
    return data.Dataset(d.x_train, d.y_train, d.x_test, d.y_test)


def _cases(tmp):
    """{public function name: [(label, call, argument named in the error)]}."""
    cifar = tmp / "cifar"
    cifar.mkdir(exist_ok=True)
    with open(cifar / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.zeros((30, 3072), np.uint8), b"labels": list(range(10)) * 3 + [0]}, fh)
    wide = tmp / "wide"
    wide.mkdir(exist_ok=True)
    with open(wide / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, fh)
    garbage = tmp / "garbage"
    garbage.mkdir(exist_ok=True)
    _write(garbage / "data_batch_1", b"not a pickle")
    stray = tmp / "stray"
    stray.mkdir(exist_ok=True)
    _write(stray / "data_batch_1.bak", b"")
    idx = tmp / "idx"
    idx.mkdir(exist_ok=True)
    _write(idx / "short", b"\x00\x00\x08\x03\x00\x00")
    _write(idx / "bad.gz", b"not gzip at all")
    swapped = tmp / "swapped"
    swapped.mkdir(exist_ok=True)
    labels = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    images = b"\x00\x00\x08\x03" + b"".join(v.to_bytes(4, "big") for v in (3, 28, 28)) + bytes(3 * 784)
    _write(swapped / "train-images-idx3-ubyte", labels)
    _write(swapped / "train-labels-idx1-ubyte", images)
    cfg = train_module.TrainConfig(steps=4, record_every=2, n_eigs=0, record_outputs=False)
    return {
        # data
        "widenet.data.spiral": [
            ("one class", lambda: data.spiral(KEY, n_classes=1), "n_classes"),
            ("zero points", lambda: data.spiral(KEY, n_per_class=0), "n_per_class"),
            ("negative noise", lambda: data.spiral(KEY, noise=-0.1), "noise"),
        ],
        "widenet.data.spiral_points": [
            ("counts per class", lambda: data.spiral_points(KEY, n_per_class=(5, 5)), "n_per_class")
        ],
        "widenet.data.rank_k_regression": [
            ("n_train = 0", lambda: data.rank_k_regression(KEY, 0), "n_train"),
            ("n_test = -1", lambda: data.rank_k_regression(KEY, 5, n_test=-1), "n_test"),
            ("d = 2", lambda: data.rank_k_regression(KEY, 5, d=2), "d"),
            ("unknown task", lambda: data.rank_k_regression(KEY, 5, task="rank3"), "task"),
        ],
        "widenet.data.rank_k_target": [("unknown task", lambda: data.rank_k_target(np.ones((2, 4)), "x"), "task")],
        "widenet.data.gaussian": [
            ("n_train = -1", lambda: data.gaussian(KEY, -1, 3), "n_train"),
            ("out_dim = 0", lambda: data.gaussian(KEY, 2, 3, out_dim=0), "out_dim"),
            ("negative noise", lambda: data.gaussian(KEY, 2, 3, noise=-1.0), "noise"),
            ("d = 0.5", lambda: data.gaussian(KEY, 2, 0.5), "d"),
        ],
        "widenet.data.digits": [
            ("n_train = -5", lambda: data.digits(key=KEY, n_train=-5), "n_train"),
            ("n_train float", lambda: data.digits(key=KEY, n_train=10.0), "n_train"),
            ("too many", lambda: data.digits(key=KEY, n_train=1797, n_test=10), "n_train"),
            ("unknown target", lambda: data.digits(key=KEY, n_train=10, target="parity"), "target"),
            ("unknown normalisation", lambda: data.digits(key=KEY, n_train=10, normalize="unit"), "normalize"),
            ("one class", lambda: data.digits(key=KEY, n_train=10, classes=(3,)), "classes"),
            ("class 10", lambda: data.digits(key=KEY, n_train=10, classes=(0, 10)), "classes"),
        ],
        "widenet.data.read_idx": [
            ("truncated header", lambda: data.read_idx(idx / "short"), "short"),
            ("not gzip", lambda: data.read_idx(idx / "bad.gz"), "bad.gz"),
            ("missing", lambda: data.read_idx(idx / "missing"), "missing"),
        ],
        "widenet.data.load_mnist": [
            ("swapped files", lambda: data.load_mnist(swapped, key=KEY, n_train=2), "train-images-idx3-ubyte"),
            ("no files", lambda: data.load_mnist(tmp, key=KEY, n_train=2), "train-images-idx3-ubyte"),
        ],
        "widenet.data.load_cifar10": [
            ("31 labels for 30 rows", lambda: data.load_cifar10(cifar, key=KEY, n_train=2), "data_batch_1"),
            ("100-wide rows", lambda: data.load_cifar10(wide, key=KEY, n_train=2), "data_batch_1"),
            ("not a pickle", lambda: data.load_cifar10(garbage, key=KEY, n_train=2), "data_batch_1"),
            ("only a stray .bak", lambda: data.load_cifar10(stray, key=KEY, n_train=2), "data_batch_1"),
        ],
        "widenet.data.one_hot": [
            ("label -1", lambda: data.one_hot([-1], 3), "labels"),
            ("label 3 of 3", lambda: data.one_hot([3], 3), "labels"),
            ("float labels", lambda: data.one_hot([0.5], 3), "labels"),
            ("no classes", lambda: data.one_hot([0], 0), "n_classes"),
        ],
        "widenet.data.split": [
            (
                "labels short",
                lambda: data.split(np.ones((4, 2)), np.ones((4, 1)), np.ones(3), key=KEY, n_train=2, n_test=1),
                "labels",
            ),
            (
                "n_test negative",
                lambda: data.split(np.ones((4, 2)), np.ones((4, 1)), None, key=KEY, n_train=2, n_test=-1),
                "n_test",
            ),
        ],
        # networks
        "widenet.networks.mlp": [
            ("tanh", lambda: networks.mlp((8,), activation="tanh"), "activation"),
            ("width 0", lambda: networks.mlp((0,)), "hidden"),
            ("out_dim 0", lambda: networks.mlp((8,), 0), "out_dim"),
            ("parameterization", lambda: networks.mlp((8,), parameterization="mup"), "parameterization"),
        ],
        "widenet.networks.cnn": [
            ("no layers", lambda: networks.cnn(()), "channels"),
            ("0 channels", lambda: networks.cnn((0,)), "channels"),
            ("out_dim 0", lambda: networks.cnn((4,), 0), "out_dim"),
            ("2-D image shape", lambda: networks.cnn((4,), image_shape=(8, 8)), "image_shape"),
            ("unknown readout", lambda: networks.cnn((4,), readout="max"), "readout"),
            ("unknown activation", lambda: networks.cnn((4,), activation="tanh"), "activation"),
            ("parameterization", lambda: networks.cnn((4,), parameterization="mup"), "parameterization"),
        ],
        "widenet.networks.from_stax": [
            (
                "input_dim 0",
                lambda: networks.from_stax(networks._nt.stax.Dense(2), 2, key=KEY, input_dim=0),
                "input_dim",
            )
        ],
        "widenet.networks.measure_degree": [
            ("no scales", lambda: networks.measure_degree(NET.apply_fn, PARAMS, X, scales=()), "scales")
        ],
        "widenet.networks.empirical_ntk": [("not callable", lambda: networks.empirical_ntk("relu"), "apply_fn")],
        "widenet.networks.empirical_ntk_full": [
            ("not callable", lambda: networks.empirical_ntk_full(None), "apply_fn")
        ],
        "widenet.networks.lazy": [
            ("alpha 0", lambda: networks.lazy(NET.apply_fn, 0.0), "alpha"),
            ("alpha inf", lambda: networks.lazy(NET.apply_fn, np.inf), "alpha"),
        ],
        "widenet.networks.lazy_params": [("None", lambda: networks.lazy_params(None), "params0")],
        "widenet.networks.linearized": [("not callable", lambda: networks.linearized(None), "apply_fn")],
        "widenet.networks.scale_invariant": [("radius -1", lambda: networks.scale_invariant(NET, radius=-1.0), "radius")],
        "widenet.networks.quadratic": [("not callable", lambda: networks.quadratic(None), "apply_fn")],
        "widenet.networks.linearized_gd_params": [
            ("eta 0", lambda: networks.linearized_gd_params(NET.apply_fn, PARAMS, X, Y, learning_rate=0.0, steps=3), "learning_rate"),
            ("steps -1", lambda: networks.linearized_gd_params(NET.apply_fn, PARAMS, X, Y, learning_rate=0.1, steps=-1), "steps"),
            ("y shape", lambda: networks.linearized_gd_params(NET.apply_fn, PARAMS, X, Y, learning_rate=0.1, steps=3), "`y`"),
        ],
        # losses
        "widenet.losses.mse": [
            ("(4, 1) against (4,)", lambda: losses.mse(jnp.full((4, 1), 0.5), jnp.ones(4)), "`y`"),
            ("weights (n, 1)", lambda: losses.mse(jnp.ones((4, 1)), jnp.ones((4, 1)), jnp.ones((4, 1))), "weights"),
        ],
        "widenet.losses.cross_entropy": [
            ("2 vs 3 classes", lambda: losses.cross_entropy(jnp.ones((4, 2)), jnp.ones((4, 3))), "`y`")
        ],
        "widenet.losses.accuracy": [
            ("(4, 1) against (4,)", lambda: losses.accuracy(jnp.ones((4, 1)), jnp.ones(4)), "`y`")
        ],
        "widenet.losses.get": [("unknown loss", lambda: losses.get("hinge"), "loss")],
        "widenet.losses.output_gradient": [("unknown loss", lambda: losses.output_gradient("l1", F0, Y), "loss")],
        # schedules
        "widenet.schedules.constant": [("negative", lambda: schedules.constant(None), "value")],
        "widenet.schedules.piecewise_constant": [
            ("lengths", lambda: schedules.piecewise_constant([10], [1.0]), "values"),
            ("decreasing", lambda: schedules.piecewise_constant([10, 5], [1.0, 2.0, 3.0]), "boundaries"),
        ],
        "widenet.schedules.exponential_decay": [
            ("rate 0", lambda: schedules.exponential_decay(1.0, rate=0.0), "rate"),
            ("every 0", lambda: schedules.exponential_decay(1.0, rate=0.5, every=0), "every"),
        ],
        "widenet.schedules.l2_budget": [
            ("budget 0", lambda: schedules.l2_budget(0.0, c=1.0), "time_budget"),
            ("c nan", lambda: schedules.l2_budget(1.0, c=np.nan), "c"),
        ],
        "widenet.schedules.auto_l2": [
            ("initial negative", lambda: schedules.auto_l2(-0.1), "initial"),
            ("factor 1", lambda: schedules.auto_l2(factor=1.0), "factor"),
        ],
        "widenet.schedules.class_weights": [
            ("amplitude inf", lambda: schedules.class_weights(0, n_classes=3, period=4, amplitude=np.inf), "amplitude"),
            ("amplitude < 1", lambda: schedules.class_weights(0, n_classes=3, period=4, amplitude=0.5), "amplitude"),
            ("period 1", lambda: schedules.class_weights(0, n_classes=3, period=1, amplitude=2.0), "period"),
            ("shape", lambda: schedules.class_weights(0, n_classes=3, period=4, amplitude=2.0, shape="saw"), "shape"),
        ],
        # spectra
        "widenet.spectra.lanczos": [("order > dim", lambda: spectra.lanczos(lambda v: v, 3, 5, key=KEY), "order")],
        "widenet.spectra.hessian_matvec": [("not callable", lambda: spectra.hessian_matvec(None, PARAMS), "loss_fn")],
        "widenet.spectra.hessian_top_eigenvalues": [
            ("k > order", lambda: spectra.hessian_top_eigenvalues(lambda p: 0.0, PARAMS, k=5, order=3, key=KEY), "k")
        ],
        "widenet.spectra.ntk_matvec": [("x 1-D", lambda: spectra.ntk_matvec(NET.apply_fn, PARAMS, jnp.ones(2)), "x")],
        "widenet.spectra.ntk_top_eigenvalues": [
            ("k 0", lambda: spectra.ntk_top_eigenvalues(NET.apply_fn, PARAMS, X, k=0, key=KEY), "k")
        ],
        # observables
        "widenet.observables.agop": [("x 1-D", lambda: observables.agop(NET.apply_fn, PARAMS, jnp.ones(2)), "x")],
        "widenet.observables.agop_alignment": [
            ("shapes", lambda: observables.agop_alignment(jnp.eye(2), jnp.eye(3)), "g_star")
        ],
        "widenet.observables.true_agop": [
            ("d 3", lambda: observables.true_agop("rank2", 3), "d"),
            ("task", lambda: observables.true_agop("rank9", 5), "task"),
        ],
        # harness, plots, store
        "widenet.harness.build_problem": [
            ("loss", lambda: harness.build_problem(DATA, NET, key=KEY, loss="l1"), "loss")
        ],
        "widenet.harness.check": [("both sides", lambda: harness.check("x", 1.0, below=1.0, above=0.0), "below")],
        "widenet.harness.fit_slope": [
            ("one point", lambda: harness.fit_slope([1.0], [2.0]), "x"),
            ("non-positive", lambda: harness.fit_slope([1.0, 2.0], [1.0, -1.0]), "y"),
        ],
        "widenet.harness.rate_check": [
            ("y not per seed", lambda: harness.rate_check("r", [1.0, 2.0], [1.0, 0.5], exponent=-1.0), "y_by_seed"),
            ("non-positive", lambda: harness.rate_check("r", [1.0, 2.0], [[1.0, -0.5]], exponent=-1.0), "y"),
        ],
        "widenet.harness.seed_interval": [
            ("confidence 1", lambda: harness.seed_interval([1.0, 2.0], confidence=1.0), "confidence"),
            ("nan", lambda: harness.seed_interval([1.0, np.nan]), "values"),
        ],
        "widenet.harness.seed_check": [
            ("no threshold", lambda: harness.seed_check("c", [1.0, 2.0]), "below"),
            ("nan", lambda: harness.seed_check("c", [1.0, np.nan], below=1.0), "values"),
        ],
        "widenet.harness.count_check": [
            ("tolerance 1", lambda: harness.count_check("c", [False] * 6, tolerance=1.0), "tolerance"),
            ("tolerance nan", lambda: harness.count_check("c", [False] * 6, tolerance=np.nan), "tolerance"),
        ],
        "widenet.harness.miss_rate_interval": [
            ("no runs", lambda: harness.miss_rate_interval(0, 0), "runs"),
            ("more misses than runs", lambda: harness.miss_rate_interval(4, 3), "misses"),
            ("negative misses", lambda: harness.miss_rate_interval(-1, 3), "misses"),
        ],
        "widenet.harness.write_report": [("size", lambda: harness.write_report([], tmp, size="huge"), "size")],
        "widenet.harness.read_results": [("size", lambda: harness.read_results(tmp, size="huge"), "size")],
        "widenet.plots.curves": [("no panels", lambda: plots.curves(tmp / "a.png", []), "panels")],
        "widenet.plots.rate": [
            ("lengths", lambda: plots.rate(tmp / "r.png", [1, 2], [1], xlabel="", ylabel="", slope=1.0), "y")
        ],
        "widenet.plots.heatmap": [("no panels", lambda: plots.heatmap(tmp / "h.png", []), "panels")],
        "widenet.compare.l2_mse": [
            (
                "seeds 0",
                lambda: compare.l2_mse(
                    lambda w: NET, DATA, widths=(8,), seeds=0, learning_rate=0.1, l2=0.1, steps=2, key=KEY
                ),
                "seeds",
            ),
            (
                "no widths",
                lambda: compare.l2_mse(
                    lambda w: NET, DATA, widths=(), seeds=2, learning_rate=0.1, l2=0.1, steps=2, key=KEY
                ),
                "widths",
            ),
            (
                "l2 0",
                lambda: compare.l2_mse(
                    lambda w: NET, DATA, widths=(8,), seeds=2, learning_rate=0.1, l2=0.0, steps=2, key=KEY
                ),
                "l2",
            ),
        ],
        "widenet.compare.l2": [
            ("AutoL2", lambda: compare.l2(networks.mlp, _digits(), widths=(8,), seeds=1, learning_rate=0.1,
                                          l2=schedules.auto_l2(), steps=2, key=KEY), "l2"),
            ("two schedules", lambda: compare.l2(networks.mlp, _digits(), widths=(8,), seeds=1,
                                                 learning_rate=lambda s: 0.1, l2=lambda s: 0.1, steps=2, key=KEY),
             "learning_rate"),
            ("unknown loss", lambda: compare.l2(networks.mlp, _digits(), widths=(8,), seeds=1, learning_rate=0.1, l2=0.1,
                                                steps=2, key=KEY, loss="hinge"), "loss"),
            ("l2 = 0", lambda: compare.l2(networks.mlp, _digits(), widths=(8,), seeds=1, learning_rate=0.1, l2=0.0,
                                          steps=2, key=KEY), "l2"),
        ],
        "widenet.compare.catapult_gd": [
            ("products unsorted", lambda: compare.catapult_gd(networks.mlp, _digits(), widths=(8,), seeds=1,
                                                              products=(3.0, 2.0), steps=2, key=KEY), "products"),
            ("product 0", lambda: compare.catapult_gd(networks.mlp, _digits(), widths=(8,), seeds=1, products=(0.0,),
                                                      steps=2, key=KEY), "products"),
            ("no widths", lambda: compare.catapult_gd(networks.mlp, _digits(), widths=(), seeds=1, products=(1.0,),
                                                      steps=2, key=KEY), "widths"),
            ("steps 0", lambda: compare.catapult_gd(networks.mlp, _digits(), widths=(8,), seeds=1, products=(1.0,),
                                                    steps=0, key=KEY), "steps"),
        ],
        "widenet.experiment.distributed.process_share": [
            ("no runs", lambda: distributed.process_share(0), "n_runs"),
            ("index past the count", lambda: distributed.process_share(4, process_index=3, process_count=3), "process_index"),
            ("zero processes", lambda: distributed.process_share(4, process_index=0, process_count=0), "process_count"),
        ],
        "widenet.experiment.distributed.train_shared": [
            ("no name", lambda: distributed.train_shared(lambda p, x: x, {"w": np.ones((2, 3))}, _digits(), cfg,
                                                         store=store.RunStore(tmp / "shared"), name="",
                                                         learning_rate=0.1), "name"),
            ("empty params", lambda: distributed.train_shared(lambda p, x: x, {}, _digits(), cfg,
                                                              store=store.RunStore(tmp / "shared"), name="s",
                                                              learning_rate=0.1), "params"),
            ("unnamed schedule", lambda: distributed.train_shared(lambda p, x: x @ p["w"], {"w": np.ones((2, 64, 1))},
                                                                  _digits(), cfg, store=store.RunStore(tmp / "shared"),
                                                                  name="s", learning_rate=lambda s: 0.1), "identity"),
        ],
        "widenet.experiment.distributed.gather": [
            ("missing runs", lambda: distributed.gather(store.RunStore(tmp / "shared"), "absent", 2,
                                                        apply_fn=lambda p, x: x @ p["w"], params={"w": np.ones((2, 64, 1))},
                                                        data=_digits(), config=cfg, learning_rate=0.1), "runs"),
            ("no runs", lambda: distributed.gather(store.RunStore(tmp / "shared"), "absent", 0, apply_fn=lambda p, x: x,
                                                   params={}, data=_digits(), config=cfg, learning_rate=0.1), "n_runs"),
        ],
        "widenet.compare.floquet": [
            ("no labels", lambda: compare.floquet(lambda w: networks.mlp((w,), 3), _unlabelled(), widths=(8,), seeds=1,
                                                  period=2, amplitude=3.0, ratios=(0.9, 1.1), cycles=4, key=KEY),
             "labels_train"),
            ("one output", lambda: compare.floquet(lambda w: networks.mlp((w,)), _digits(), widths=(8,), seeds=1, period=2,
                                                   amplitude=3.0, ratios=(0.9, 1.1), cycles=4, key=KEY), "y_train"),
            ("one ratio", lambda: compare.floquet(lambda w: networks.mlp((w,), 3), _spiral(), widths=(8,), seeds=1,
                                                  period=2, amplitude=3.0, ratios=(1.0,), cycles=4, key=KEY), "ratios"),
            ("period 1", lambda: compare.floquet(lambda w: networks.mlp((w,), 3), _spiral(), widths=(8,), seeds=1,
                                                 period=1, amplitude=3.0, ratios=(0.9, 1.1), cycles=4, key=KEY), "period"),
            ("amplitude 0.5", lambda: compare.floquet(lambda w: networks.mlp((w,), 3), _spiral(), widths=(8,), seeds=1,
                                                      period=2, amplitude=0.5, ratios=(0.9, 1.1), cycles=4, key=KEY),
             "amplitude"),
            ("outputs vs classes", lambda: compare.floquet(lambda w: networks.mlp((w,), 2), _spiral(), widths=(8,),
                                                           seeds=1, period=2, amplitude=3.0, ratios=(0.9, 1.1),
                                                           cycles=4, key=KEY), "make_network"),
        ],
        "widenet.compare.growth_per_cycle": [
            ("one record", lambda: compare.growth_per_cycle([1.0]), "loss"),
            ("window 0", lambda: compare.growth_per_cycle([1.0, 2.0, 3.0], window=0), "window"),
        ],
        "widenet.compare.boundary_crossing": [
            ("shapes", lambda: compare.boundary_crossing([0.9, 1.0, 1.1], [0.1, 0.2]), "growth"),
        ],
        "widenet.plots.catapult_comparison": [("not a comparison", lambda: plots.catapult_comparison("x.png", {}), "comp")],
        "widenet.plots.floquet_comparison": [("not a comparison", lambda: plots.floquet_comparison("x.png", {}), "comp")],
        "widenet.compare.mean_interval": [
            ("confidence 1", lambda: compare.mean_interval([1.0, 2.0], confidence=1.0), "confidence")
        ],
        "widenet.plots.comparison": [("not a comparison", lambda: plots.comparison(tmp / "c.png", None), "comp")],
        "widenet.plots.width_colour": [("width 0", lambda: plots.width_colour(0), "width")],
        "widenet.results.from_train": [("not a TrainResult", lambda: results.from_train(None), "result")],
        "widenet.results.from_solution": [
            ("not a solution", lambda: results.from_solution({"f_train": 1}), "solution")
        ],
        "widenet.results.train_result": [
            (
                "a solution's dataset",
                lambda: results.train_result(
                    results.from_solution(l2_homogeneous.mse_solution(TS, K, Y, F0, l2=0.1, k=2))
                ),
                "dataset",
            )
        ],
        "widenet.results.solution": [("not a dataset", lambda: results.solution({}), "dataset")],
        "widenet.results.save": [("not a dataset", lambda: results.save({"a": 1}, tmp / "x.nc"), "dataset")],
        "widenet.results.load": [("missing file", lambda: results.load(tmp / "missing.nc"), "path")],
        "widenet.store.code_fingerprint": [
            ("missing file", lambda: store.code_fingerprint([tmp / "nope.py"]), "nope.py")
        ],
        # theory: L2
        "widenet.theory.l2_homogeneous.kernel_decay": [
            ("k 0.5", lambda: l2_homogeneous.kernel_decay(TS, 1.0, l2=0.1, k=0.5), "k"),
            ("l2 < 0", lambda: l2_homogeneous.kernel_decay(TS, 1.0, l2=-0.1, k=2), "l2"),
        ],
        "widenet.theory.l2_homogeneous.mode_coefficients": [
            ("gamma < 0", lambda: l2_homogeneous.mode_coefficients(TS, -1.0, l2=0.1, k=2), "gamma0"),
            ("l2 string", lambda: l2_homogeneous.mode_coefficients(TS, 1.0, l2="0.1", k=2), "l2"),
        ],
        "widenet.theory.l2_homogeneous.mode_solution": [
            ("f0 None", lambda: l2_homogeneous.mode_solution(TS, 1.0, 1.0, None, l2=0.1, k=2), "f0_mode"),
            (
                "k None (non-homogeneous net)",
                lambda: l2_homogeneous.mode_solution(TS, 1.0, 1.0, 0.0, l2=0.1, k=None),
                "k",
            ),
            ("l2 None", lambda: l2_homogeneous.mode_solution(TS, 1.0, 1.0, 0.0, l2=None, k=2), "l2"),
            ("negative time", lambda: l2_homogeneous.mode_solution(-TS, 1.0, 1.0, 0.0, l2=0.1, k=2), "ts"),
        ],
        "widenet.theory.l2_homogeneous.gd_solution": [
            ("eta 0", lambda: l2_homogeneous.gd_solution([0, 1], KERNEL, Y2, Y2, learning_rate=0.0, l2=0.1, k=2), "learning_rate"),
            ("eta l2 >= 1", lambda: l2_homogeneous.gd_solution([0, 1], KERNEL, Y2, Y2, learning_rate=2.0, l2=0.5, k=2),
             "learning_rate"),
            ("negative step", lambda: l2_homogeneous.gd_solution([-1], KERNEL, Y2, Y2, learning_rate=0.1, l2=0.1, k=2), "steps"),
            ("float steps", lambda: l2_homogeneous.gd_solution([0.5], KERNEL, Y2, Y2, learning_rate=0.1, l2=0.1, k=2), "steps"),
            ("k 0.5", lambda: l2_homogeneous.gd_solution([0], KERNEL, Y2, Y2, learning_rate=0.1, l2=0.1, k=0.5), "k"),
            ("not PSD", lambda: l2_homogeneous.gd_solution([0], NOT_PSD, Y2, Y2, learning_rate=0.1, l2=0.1, k=2), "ntk_train"),
        ],
        "widenet.theory.l2_homogeneous.mse_solution": [
            (
                "not PSD",
                lambda: l2_homogeneous.mse_solution(TS, NOT_PSD, jnp.ones((2, 1)), jnp.zeros((2, 1)), l2=0.1, k=2),
                "ntk_train",
            ),
            (
                "f0_test outputs",
                lambda: l2_homogeneous.mse_solution(
                    TS, K, Y, F0, l2=0.1, k=2, ntk_test_train=K[:2], f0_test=jnp.zeros((2, 2))
                ),
                "f0_test",
            ),
            (
                "empty kernel",
                lambda: l2_homogeneous.mse_solution(
                    TS, jnp.zeros((0, 0)), jnp.zeros((0, 1)), jnp.zeros((0, 1)), l2=0.1, k=2
                ),
                "ntk_train",
            ),
            (
                "NaN kernel",
                lambda: l2_homogeneous.mse_solution(TS, K.at[0, 0].set(jnp.nan), Y, F0, l2=0.1, k=2),
                "ntk_train",
            ),
            ("y rows", lambda: l2_homogeneous.mse_solution(TS, K, jnp.ones((2, 1)), F0, l2=0.1, k=2), "y_train"),
        ],
        "widenet.theory.l2_homogeneous.fixed_point": [
            ("l2 = 0, singular", lambda: l2_homogeneous.fixed_point(jnp.ones((4, 4)), jnp.ones((4, 1)), l2=0.0), "l2")
        ],
        "widenet.theory.l2_homogeneous.training_loss": [
            ("0 < k < 1", lambda: l2_homogeneous.training_loss(TS, K, Y, F0, l2=0.1, k=0.5), "k")
        ],
        "widenet.theory.l2_homogeneous.loss_minimum_time": [
            ("grid 0", lambda: l2_homogeneous.loss_minimum_time(K, Y, F0, l2=0.1, k=2, grid=0), "grid"),
            ("l2 0", lambda: l2_homogeneous.loss_minimum_time(K, Y, F0, l2=0.0, k=2), "l2"),
        ],
        "widenet.theory.l2_homogeneous.optimal_l2": [
            ("budget 0", lambda: l2_homogeneous.optimal_l2(0.0, c=1.0), "time_budget")
        ],
        "widenet.theory.ode.function_space_ode": [
            (
                "non-monotone times",
                lambda: ode.function_space_ode(jnp.array([0.0, 1.0, 0.5]), K, Y, F0, l2=0.1, k=2),
                "ts",
            ),
            ("rtol 0", lambda: ode.function_space_ode(TS, K, Y, F0, l2=0.1, k=2, rtol=0.0), "rtol"),
            (
                "weights shape",
                lambda: ode.function_space_ode(TS, K, Y, F0, l2=0.1, k=2, weights=jnp.ones((3, 1))),
                "weights",
            ),
            ("loss", lambda: ode.function_space_ode(TS, K, Y, F0, l2=0.1, k=2, loss="hinge"), "loss"),
        ],
        "widenet.theory.symbolic.mode_solution": [("k 0.5", lambda: symbolic.mode_solution(0.5), "k")],
        "widenet.theory.symbolic.mode_ode_rhs": [
            ("k 0", lambda: symbolic.mode_ode_rhs(symbolic.symbols()["f0"], 0), "k")
        ],
        "widenet.theory.symbolic.ode_residual": [
            ("k 0", lambda: symbolic.ode_residual(symbolic.mode_solution(), 0), "k")
        ],
        "widenet.theory.symbolic.numeric": [
            ("modules", lambda: symbolic.numeric(symbolic.mode_solution(2), modules="torch"), "modules")
        ],
        "widenet.theory.special.scaled_upper_gamma": [
            ("log_u nan", lambda: special.scaled_upper_gamma(0.5, np.nan), "log_u"),
            ("p inf", lambda: special.scaled_upper_gamma(np.inf, 0.0), "p"),
        ],
        "widenet.theory.special.exprel": [("string", lambda: special.exprel("1"), "z")],
        "widenet.theory.special.gamma_table": [
            ("p above 1/2", lambda: special.gamma_table(0.75), "p"),
            ("p below the tabulated orders", lambda: special.gamma_table(-2e4), "p"),
            ("p nan", lambda: special.gamma_table(np.nan), "p"),
            ("p a vector", lambda: special.gamma_table(np.zeros(2)), "p"),
        ],
        "widenet.theory.special.scaled_upper_gamma_tabulated": [
            ("log_u nan", lambda: special.scaled_upper_gamma_tabulated(special.gamma_table(0.0), np.nan), "log_u"),
            ("table not a GammaTable", lambda: special.scaled_upper_gamma_tabulated(0.0, 1.0), "table"),
        ],
        # theory: catapult
        "widenet.theory.catapult.uv_map": [
            ("width 0", lambda: catapult.uv_map(0.1, 1.0, learning_rate=0.1, width=0), "width"),
            ("lr < 0", lambda: catapult.uv_map(0.1, 1.0, learning_rate=-1.0, width=10), "learning_rate"),
        ],
        "widenet.theory.catapult.uv_trajectory": [
            ("steps 0", lambda: catapult.uv_trajectory(0.1, 1.0, learning_rate=0.1, width=10, steps=0), "steps"),
            ("steps float", lambda: catapult.uv_trajectory(0.1, 1.0, learning_rate=0.1, width=10, steps=2.5), "steps"),
        ],
        "widenet.theory.catapult.uv_phase": [("lam0 0", lambda: catapult.uv_phase(0.0, learning_rate=1.0), "lam0")],
        "widenet.theory.catapult.uv_catapult_peak": [
            ("lr nan", lambda: catapult.uv_catapult_peak(0.1, 1.0, learning_rate=np.nan, width=10), "learning_rate")
        ],
        "widenet.theory.catapult.quadratic_model": [
            ("not callable", lambda: catapult.quadratic_model(None, PARAMS), "apply_fn")
        ],
        "widenet.theory.catapult.critical_learning_rate": [
            ("not PSD", lambda: catapult.critical_learning_rate(NOT_PSD), "kernel"),
            ("reduction", lambda: catapult.critical_learning_rate(K, reduction="max"), "reduction"),
        ],
        "widenet.theory.catapult.loss_decomposition": [
            ("top 4 > n = 3", lambda: catapult.loss_decomposition(K, Y, top=4), "top"),
            ("residual rows", lambda: catapult.loss_decomposition(K, jnp.ones((2, 1)), top=1), "residual"),
        ],
        "widenet.theory.catapult.measured_phase": [
            ("lengths", lambda: catapult.measured_phase(np.ones((2, 3)), np.array([-1])), "diverged_at")
        ],
        "widenet.theory.catapult.phase_edges": [
            ("lengths", lambda: catapult.phase_edges([1.0, 2.0], ["lazy"]), "phases"),
            ("unknown phase", lambda: catapult.phase_edges([1.0], ["odd"]), "phases"),
        ],
        # theory: oscillatory
        "widenet.theory.oscillatory.cycle_weights": [
            ("one class", lambda: oscillatory.cycle_weights([0, 0], n_classes=1, period=4, amplitude=2.0), "n_classes"),
            ("label 3 of 3", lambda: oscillatory.cycle_weights([0, 3], n_classes=3, period=4, amplitude=2.0), "labels"),
            ("period 1", lambda: oscillatory.cycle_weights([0, 1], n_classes=3, period=1, amplitude=2.0), "period"),
            ("amplitude 0.5", lambda: oscillatory.cycle_weights([0, 1], n_classes=3, period=4, amplitude=0.5), "amplitude"),
        ],
        "widenet.theory.oscillatory.floquet_multipliers": [
            ("lr -1", lambda: oscillatory.floquet_multipliers(K, WEIGHTS, learning_rate=-1.0), "learning_rate")
        ],
        "widenet.theory.oscillatory.floquet_radius": [
            ("lr -1", lambda: oscillatory.floquet_radius(K, WEIGHTS, learning_rate=-1.0), "learning_rate"),
            ("not PSD", lambda: oscillatory.floquet_radius(NOT_PSD, jnp.ones((4, 2)), learning_rate=0.1), "kernel"),
            ("weights columns", lambda: oscillatory.floquet_radius(K, jnp.ones((4, 2)), learning_rate=0.1), "weights"),
        ],
        "widenet.theory.oscillatory.floquet_stable": [
            ("tol negative", lambda: oscillatory.floquet_stable(K, WEIGHTS, learning_rate=0.1, tol=-1.0), "tol")
        ],
        "widenet.theory.oscillatory.floquet_radius_grid": [
            (
                "label 5 of 3",
                lambda: oscillatory.floquet_radius_grid(
                    K, [0, 1, 5], n_classes=3, periods=[2], amplitudes=[2.0], learning_rates=[0.1]
                ),
                "labels",
            ),
            (
                "label -1",
                lambda: oscillatory.floquet_radius_grid(
                    K, [0, 1, -1], n_classes=3, periods=[2], amplitudes=[2.0], learning_rates=[0.1]
                ),
                "labels",
            ),
        ],
        "widenet.theory.oscillatory.stability_boundary": [
            ("eta_max inf", lambda: oscillatory.stability_boundary(K, WEIGHTS, eta_max=np.inf), "eta_max"),
            ("rtol nan", lambda: oscillatory.stability_boundary(K, WEIGHTS, eta_max=2.0, rtol=np.nan), "rtol"),
            ("rtol 0 (would hang)", lambda: oscillatory.stability_boundary(K, WEIGHTS, eta_max=2.0, rtol=0.0), "rtol"),
            (
                "rtol < 0 (would hang)",
                lambda: oscillatory.stability_boundary(K, WEIGHTS, eta_max=2.0, rtol=-1.0),
                "rtol",
            ),
        ],
        "widenet.theory.oscillatory.transient_amplification": [
            ("negative weights", lambda: oscillatory.transient_amplification(K, -WEIGHTS, learning_rate=0.1), "weights")
        ],
        "widenet.theory.oscillatory.function_space_gd": [
            (
                "loss",
                lambda: oscillatory.function_space_gd(
                    K, jnp.zeros((3, 2)), jnp.ones((3, 2)), jnp.ones((4, 3)), learning_rate=0.1, loss="hinge"
                ),
                "loss",
            ),
            (
                "y shape",
                lambda: oscillatory.function_space_gd(
                    K, jnp.zeros((3, 2)), jnp.ones((3, 3)), jnp.ones((4, 3)), learning_rate=0.1
                ),
                "y",
            ),
        ],
        "widenet.theory.oscillatory.gauss_newton_sharpness": [
            ("weights rows", lambda: oscillatory.gauss_newton_sharpness(K, jnp.zeros((3, 2)), jnp.ones(2)), "weights")
        ],
        "widenet.theory.oscillatory.instability_intervals": [
            ("lr 0", lambda: oscillatory.instability_intervals(np.ones(3), learning_rate=0.0), "learning_rate")
        ],
        # trainer
        "widenet.experiment.train.train": [
            (
                "2-column targets for a 1-output net",
                lambda: train_module.train(
                    NET.apply_fn,
                    PARAMS,
                    data.Dataset(DATA.x_train, np.ones((5, 2)), DATA.x_test, np.ones((2, 2))),
                    cfg,
                    learning_rate=0.1,
                ),
                "y_train",
            ),
            (
                "wrong input dimension",
                lambda: train_module.train(
                    NET.apply_fn,
                    PARAMS,
                    data.Dataset(np.ones((5, 3)), np.ones((5, 1)), np.ones((2, 3)), np.ones((2, 1))),
                    cfg,
                    learning_rate=0.1,
                ),
                "x_train",
            ),
            (
                "schedule returns -0.1",
                lambda: train_module.train(NET.apply_fn, PARAMS, DATA, cfg, learning_rate=lambda s: -0.1),
                "learning_rate",
            ),
            ("lr 0", lambda: train_module.train(NET.apply_fn, PARAMS, DATA, cfg, learning_rate=0.0), "learning_rate"),
            (
                "l2 negative",
                lambda: train_module.train(NET.apply_fn, PARAMS, DATA, cfg, learning_rate=0.1, l2=-1.0),
                "l2",
            ),
        ],
        "widenet.experiment.train.train_sweep": [
            (
                "lr of the wrong length",
                lambda: train_module.train_sweep(
                    NET.apply_fn,
                    jax.tree.map(lambda p: jnp.stack([p, p]), PARAMS),
                    DATA,
                    cfg,
                    learning_rate=jnp.array([0.1, 0.1, 0.1]),
                ),
                "learning_rate",
            ),
            (
                "no run axis",
                lambda: train_module.train_sweep(NET.apply_fn, {"w": jnp.float64(1.0)}, DATA, cfg, learning_rate=0.1),
                "params",
            ),
            (
                "SGD without key",
                lambda: train_module.train_sweep(
                    NET.apply_fn,
                    jax.tree.map(lambda p: p[None], PARAMS),
                    DATA,
                    train_module.TrainConfig(steps=2, batch_size=2, n_eigs=0),
                    learning_rate=0.1,
                ),
                "key",
            ),
        ],
        "widenet.experiment.train.sweep_cost": [
            (
                "lr of the wrong length",
                lambda: train_module.sweep_cost(
                    NET.apply_fn,
                    jax.tree.map(lambda p: jnp.stack([p, p]), PARAMS),
                    DATA,
                    cfg,
                    learning_rate=jnp.array([0.1, 0.1, 0.1]),
                ),
                "learning_rate",
            ),
        ],
        "widenet.experiment.train.batch_indices": [
            ("batch > n", lambda: train_module.batch_indices(KEY, 0, 3, 5), "batch_size")
        ],
    } | {
        # configs and stores validate at construction
        "widenet.experiment.train.TrainConfig": [
            ("float steps", lambda: train_module.TrainConfig(steps=10.0), "steps"),
            ("record_every 0", lambda: train_module.TrainConfig(steps=10, record_every=0), "record_every"),
        ],
        "widenet.store.RunStore": [("empty key", lambda: store.RunStore(tmp / "runs").get(""), "key")],
    }


def _public_functions():
    names = set()
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                names.add(f"{module.__name__}.{name}")
    return names


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return _cases(tmp_path_factory.mktemp("bad_inputs"))


def test_every_public_function_has_bad_input_cases(cases):
    missing = sorted(_public_functions() - set(cases) - set(NO_INPUTS))
    assert not missing, f"public functions without bad-input cases: {missing}"


def _flat_cases():
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(prefix="widenet-bad-inputs-"))
    return [(name, label, call, arg) for name, entries in _cases(tmp).items() for label, call, arg in entries]


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.parametrize("name, label, call, argument", _flat_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_gets_a_clear_error(name, label, call, argument):
    COUNTS["tried"] += 1
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_SECONDS)
    try:
        with pytest.raises((ValueError, TypeError, FileNotFoundError)) as info:
            call()
    except _Hang:
        pytest.fail(f"{name} ({label}) hung for {_SECONDS} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = str(info.value)
    assert argument in message, f"{name} ({label}): the error does not name {argument!r}: {message}"
    assert "Traceback" not in message and len(message) < 2000
    COUNTS["clear"] += 1


_finite_negative = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=True)
_not_finite = st.sampled_from([np.nan, np.inf, -np.inf])


@settings(max_examples=25, deadline=None)
@given(
    l2=st.one_of(_finite_negative, _not_finite),
    # k = 0 (scale-invariant) and k >= 1 are valid; everything else is refused
    k=st.one_of(st.floats(max_value=-1e-300, allow_nan=False), st.floats(min_value=1e-300, max_value=0.999), _not_finite),
)
def test_mode_solution_refuses_every_bad_l2_and_k_property(l2, k):
    for kwargs, argument in (({"l2": l2, "k": 2.0}, "`l2`"), ({"l2": 0.1, "k": k}, "`k`")):
        COUNTS["tried"] += 1
        with pytest.raises(ValueError, match=argument):
            l2_homogeneous.mode_solution(TS, 1.0, 1.0, 0.0, **kwargs)
        COUNTS["clear"] += 1


@settings(max_examples=25, deadline=None)
@given(
    labels=st.lists(st.integers(min_value=-5, max_value=8), min_size=3, max_size=3).filter(
        lambda v: min(v) < 0 or max(v) > 2
    )
)
def test_floquet_grid_refuses_every_out_of_range_label_property(labels):
    COUNTS["tried"] += 1
    with pytest.raises(ValueError, match="`labels`"):
        oscillatory.floquet_radius_grid(K, labels, n_classes=3, periods=[2], amplitudes=[2.0], learning_rates=[0.1])
    COUNTS["clear"] += 1


@settings(max_examples=25, deadline=None)
@given(
    rtol=st.one_of(
        st.floats(max_value=1e-16, allow_nan=False, allow_infinity=False), _not_finite, st.floats(min_value=1.0)
    )
)
def test_stability_boundary_never_hangs_on_a_bad_rtol_property(rtol):
    COUNTS["tried"] += 1
    with pytest.raises(ValueError, match="`rtol`"):
        oscillatory.stability_boundary(K, WEIGHTS, eta_max=2.0, rtol=rtol)
    COUNTS["clear"] += 1
