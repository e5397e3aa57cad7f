"""Write the teaching notebooks in this folder from their cells below, and execute them.

    python examples/build_notebooks.py            # every notebook
    python examples/build_notebooks.py 01 04      # some of them

The notebooks are stored executed, so they read well on a code-hosting site;
the test suite executes them again (``tests/test_notebooks.py``). Edit the
cells here, not in the ``.ipynb`` files, and run this script to refresh them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import latentfactors as lf

pd.set_option("display.precision", 4)
plt.rcParams["figure.figsize"] = (7, 3.5)


def load_notebook_data():
    \"\"\"The 2016 snapshot the original notebook used, or the current release.\"\"\"
    try:
        return "ml-latest-small-2016", lf.load_movielens("ml-latest-small-2016", download=False)
    except FileNotFoundError:
        return "ml-latest-small", lf.load_movielens("ml-latest-small")
"""

NOTEBOOKS = {}

NOTEBOOKS["01_latent_factors_from_scratch"] = [
    (
        "md",
        """\
# Latent factors from scratch

A recommender for explicit ratings has one job: guess how much user *u* will
like item *i*. A **latent-factor model** gives every user and every item a
short vector of numbers, and predicts a rating from how well the two vectors
agree:

$$\\hat r_{ui} = \\mu + b_u + b_i + p_u \\cdot q_i$$

* $\\mu$ is the average rating, $b_u$ says how generous user $u$ is, $b_i$ how
  good item $i$ is on average;
* $p_u \\cdot q_i$ is the *interaction*: the factors are learned, nobody tells
  the model what they mean, yet they end up encoding taste (action vs drama,
  old vs new, ...).

This notebook retells a classic Keras notebook on MovieLens with
`latentfactors`: load, explore, split, train its 5-factor model, see why it
overfits, then fix it with regularisation and early stopping.""",
    ),
    ("code", SETUP),
    ("md", "## Load and explore"),
    (
        "code",
        """\
name, ratings = load_notebook_data()
print(name, f"{len(ratings):,} ratings, {ratings.user.nunique():,} users, "
      f"{ratings.item.nunique():,} movies")
ratings.head()""",
    ),
    (
        "code",
        """\
fig, axes = plt.subplots(1, 2)
ratings.rating.value_counts().sort_index().plot.bar(ax=axes[0], title="ratings")
ratings.item.value_counts().reset_index(drop=True).plot(
    ax=axes[1], logy=True, title="ratings per movie (sorted)")
plt.tight_layout()""",
    ),
    (
        "md",
        """\
Half-star ratings, with 4 the most common. The right-hand plot is the long
tail: a few movies have hundreds of ratings, most have one or two. Those rare
movies are where a model is most tempted to overfit.

## Split like the original notebook

One random permutation, cut 80/12/8 into train, validation and test.""",
    ),
    (
        "code",
        """\
train, valid, test = lf.random_split(ratings, random_state=0)
len(train), len(valid), len(test)""",
    ),
    (
        "md",
        """\
## The notebook's model: 5 factors, Adam, no regularisation

`latentfactors.presets.notebook_dot()` is the original configuration: 5
factors, Adam with learning rate 0.01, batch 32, no regularisation. We let it
run 12 epochs instead of 5 and record the validation error after each one.""",
    ),
    (
        "code",
        """\
from latentfactors.presets import notebook_dot

keras_like = notebook_dot(n_epochs=12, random_state=0, verbose=1).fit(train, valid=valid)
curves = pd.DataFrame(keras_like.history_).set_index("epoch")
curves[["train_mse", "valid_mse"]].plot(marker="o", title="5 factors, no regularisation")
plt.ylabel("MSE");""",
    ),
    (
        "md",
        """\
The training error keeps falling while the validation error turns back up
after an epoch or two: the model memorises the training ratings. With no
penalty, the factors of a movie rated once can grow until they reproduce that
one rating exactly, which says nothing about anyone else.

## Regularisation and early stopping

Two standard cures:

* **L2 regularisation** (`reg`) adds $\\lambda (\\|p_u\\|^2 + \\|q_i\\|^2)$ to
  every rating's error, so a factor only grows if many ratings ask for it;
* **early stopping** watches the validation error and keeps the best epoch.""",
    ),
    (
        "code",
        """\
results = {}
for reg in (0.0, 0.02, 0.05, 0.1):
    model = lf.BiasedMF(5, optimizer="adam", learning_rate=0.005, reg=reg, n_epochs=40,
                        early_stopping=False, random_state=0).fit(train, valid=valid)
    results[f"reg={reg}"] = model.history_["valid_mse"]
pd.DataFrame(results, index=range(1, 41)).plot(title="validation MSE, 5 factors, Adam")
plt.xlabel("epoch"); plt.ylabel("MSE");""",
    ),
    (
        "md",
        """\
With a penalty the curves turn up later and less steeply, and the best
validation error drops. Early stopping does the rest: `early_stopping=True`
(the default) stops after `patience` epochs without improvement and restores
the best parameters.

## The tuned model

`BiasedMF()`'s defaults were chosen on the validation split: many factors
(256), started near zero and held back by L2, trained by per-rating SGD.""",
    ),
    (
        "code",
        """\
import time

rows = []
for label, model, use_valid in [
    ("notebook config (5 epochs)", notebook_dot(random_state=0), False),
    ("BiasedMF() defaults", lf.BiasedMF(random_state=0), True),
]:
    start = time.perf_counter()
    model.fit(train, valid=valid if use_valid else None)
    rows.append({"model": label, **model.evaluate(test),
                 "fit s": time.perf_counter() - start, "epochs": model.n_epochs_})
pd.DataFrame(rows).set_index("model")""",
    ),
    (
        "md",
        """\
## What the kernels compute

**SGD** (the default) updates the parameters one rating at a time, in an
order that changes every epoch (arranged block by block and user by user for
speed: see the speed notebook). For a rating $r$ of user $u$ on item $i$ with error
$e = r - \\hat r_{ui}$ and learning rate $\\eta$:

$$b_u \\leftarrow b_u + \\eta (e - \\lambda_b b_u), \\qquad
  b_i \\leftarrow b_i + \\eta (e - \\lambda_b b_i)$$
$$p_u \\leftarrow p_u + \\eta (e\\, q_i - \\lambda p_u), \\qquad
  q_i \\leftarrow q_i + \\eta (e\\, p_u - \\lambda q_i)$$

(both factor updates use the old vectors).

**Adam** averages the gradient of the same per-rating loss over a mini-batch
and keeps running moments $m$ and $v$ per parameter:

$$m \\leftarrow \\beta_1 m + (1-\\beta_1) g, \\quad v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2,
  \\quad \\theta \\leftarrow \\theta - \\alpha_t \\frac{m}{\\sqrt v + \\epsilon}$$

with $\\alpha_t = \\eta \\sqrt{1-\\beta_2^t}/(1-\\beta_1^t)$. Only the rows in the
batch move (`optimizer="adam"`), unless you ask for Keras's behaviour
(`"adam-dense"`), where every row keeps drifting with its momentum. Each
kernel is one compiled Numba function per epoch; the loop around it, early
stopping and progress are plain Python in `latentfactors/models/base.py`.""",
    ),
]

NOTEBOOKS["04_speed"] = [
    (
        "md",
        """\
# Speed: how the kernels work

All training happens in a handful of Numba functions, one call per epoch.
This notebook looks at how the SGD epoch is organised so that it is both
fast and reproducible on several threads, and measures it on synthetic
data.""",
    ),
    ("code", SETUP),
    (
        "md",
        """\
## Synthetic data with a known answer

`make_synthetic_ratings` plants a true model (biases plus rank-`rank`
factors plus noise) and reports the **noise floor**: the MSE the true model
itself gets on fresh ratings. No model can beat it.""",
    ),
    (
        "code",
        """\
ratings, truth = lf.make_synthetic_ratings(20_000, 5_000, 2_000_000, rank=8, random_state=0)
fresh = truth.sample(100_000, random_state=1)
print(f"{len(ratings):,} ratings; noise floor {truth.noise_floor:.4f}")""",
    ),
    (
        "md",
        """\
## The block schedule

A per-rating SGD step reads and writes one user row and one item row. In a
random order those rows are scattered over memory, and the processor spends
its time waiting for them. `BiasedMF` therefore lays the ratings out once per
fit in a grid of `B x B` blocks (users split into `B` stripes, items into
`B` stripes). An epoch runs `B` rounds; each round holds `B` blocks that
share no user stripe and no item stripe, so they can run on different
threads without ever touching the same row. The order of rounds and blocks
is reshuffled every epoch.

On data too large for the cache, more things keep the rows close:

- the rows are renumbered so that each stripe's items (and users) are one
  compact slice of memory, and the block's item rows stay in the core's cache;
- inside a block the ratings are grouped by user (users in random order), so
  the user's row is reused across the group;
- consecutive groups form *runs* of a few thousand ratings; each epoch visits
  a block's runs in a fresh random order, and each group from a random
  starting point, but inside a run the ratings and user rows are read in
  storage order, which the processor streams (visiting single groups in
  random order was 1.7-2.3x slower over our runs, and no more accurate);
- the groups of a run go two at a time, one rating of each in turn: one
  user's updates must wait for each other, two users' updates overlap;
- and the kernel asks the processor to fetch item rows a few updates before
  it needs them (a prefetch), and the next pair's user rows and first item
  rows while the current pair runs.

Because blocks in a round never share a row, the result does not depend on
which thread runs which block: one thread and two threads give the same
model, bit for bit.""",
    ),
    (
        "code",
        """\
from latentfactors.models.biased_mf import grid_size

for k in (8, 32, 128):
    print(f"{k:>3} factors: grid {grid_size(20_000, 5_000, len(ratings), k)}")""",
    ),
    (
        "code",
        """\
import time

timings = []
models = {}
for threads in (1, 2):
    model = lf.BiasedMF(32, n_epochs=8, reg=0.02, n_threads=threads, random_state=0)
    model.fit(ratings.iloc[:20_000])  # compile first
    model.fit(ratings)
    models[threads] = model
    epoch = np.median(model.history_["seconds"][1:])
    timings.append({"threads": threads, "s/epoch": epoch,
                    "M ratings/s": len(ratings) / epoch / 1e6})
print("identical models:",
      np.array_equal(models[1].user_factors_, models[2].user_factors_))
print(f"test MSE {models[1].evaluate(fresh)['mse']:.4f} vs noise floor {truth.noise_floor:.4f}")
pd.DataFrame(timings).set_index("threads")""",
    ),
    (
        "md",
        """\
Two threads can at most double the rate: each core does half the same work.
These are single fits on a shared machine, measured when the notebook was
last run, so one of them may have met a busy moment and the ratio may land
above or below 2. `python benchmarks/throughput.py` alternates the
configurations over several rounds to compare them fairly.""",
    ),
    (
        "md",
        """\
## Adam

The Adam kernel processes mini-batches. It only updates the rows that
appear in a batch ("lazy" Adam), so an epoch costs time proportional to the
number of ratings, not to the number of users and items times the number of
batches. Each batch runs in three parallel passes: the errors (split by
ratings), the gradients (each thread sums the rows it owns, runs of 16 rows
dealt out in turn, in batch order) and the Adam steps (split by rows). No sum depends on the
thread count, so the model is bit-identical on any number of threads. The
gain from a second thread is small: an Adam step reads and writes a row's
two moments and its gradient as well as the row, at random places in
memory, and that traffic, not arithmetic, sets the pace. Batches of fewer
than 1024 ratings run on one thread: for them the hand-offs between threads
would cost more than they save.""",
    ),
    (
        "code",
        """\
rows = []
for batch in (64, 1024):
    for threads in (1, 2):
        model = lf.BiasedMF(32, optimizer="adam", learning_rate=0.005, batch_size=batch,
                            n_epochs=4, n_threads=threads, random_state=0)
        model.fit(ratings.iloc[:20_000])
        model.fit(ratings)
        epoch = np.median(model.history_["seconds"][1:])
        rows.append({"batch": batch, "threads": threads, "s/epoch": epoch,
                     "M ratings/s": len(ratings) / epoch / 1e6})
pd.DataFrame(rows).set_index(["batch", "threads"])""",
    ),
    (
        "md",
        """\
At batch 64 both rows ran on one thread, so any difference between them is
the machine's noise, which shows how far single fits can wander. For the
full comparison with LIBMF and Surprise on 20 million ratings, run
`python benchmarks/throughput.py`.""",
    ),
]
NOTEBOOKS["02_the_mlp_head"] = [
    (
        "md",
        """\
# The MLP head

The original notebook's second, "complex" model replaced the dot product by
a small neural network: the user and item vectors are concatenated and fed
through a dense layer of 5 units and a dense layer of 1, plus the biases. It
scored better than the dot product (test MSE 0.842 against 1.008), which
looks like a win for deep learning. This notebook shows why it is not, and
what a real nonlinear head does.

`MLPMF` implements the model, with its forward and backward passes written
by hand in Numba:

$$\\hat r_{ui} = \\mu + b_u + b_i + \\mathrm{head}([p_u; q_i])$$""",
    ),
    ("code", SETUP),
    (
        "code",
        """\
from latentfactors.presets import notebook_mlp

name, ratings = load_notebook_data()
train, valid, test = lf.random_split(ratings, random_state=0)
keras_like = notebook_mlp(random_state=0).fit(train)
print(f"{name}: notebook MLP head, test MSE {keras_like.evaluate(test)['mse']:.3f}")""",
    ),
    (
        "md",
        """\
## A linear head is a biases-only model

The notebook's dense layers have no activation function. Two linear layers
in a row are one linear map, so the head computes
$w_u \\cdot p_u + w_i \\cdot q_i + c$: a number for the user plus a number
for the item. The vectors never meet. Then for any two items $i, j$ the
difference $\\hat r_{ui} - \\hat r_{uj}$ is the same for every user: the model
ranks the movies in the same order for everyone.""",
    ),
    (
        "code",
        """\
users = train.user.unique()[:200]
i, j = 1, 2571   # Toy Story, The Matrix
diff = keras_like.predict(users, np.full(len(users), i)) - keras_like.predict(
    users, np.full(len(users), j))
print(f"p(u, Toy Story) - p(u, Matrix) over 200 users: mean {diff.mean():.4f}, "
      f"spread (std) {diff.std():.1e}")""",
    ),
    (
        "md",
        """\
The spread is zero up to float rounding. So the "complex model" is the
biases-only baseline in disguise, and it won because, with no
regularisation and a learning rate that overfits interactions within a
couple of epochs, *not being able* to model interactions was an advantage.
A plain biases-only model (one tiny, heavily regularised factor), with its
biases regularised, does even better:""",
    ),
    (
        "code",
        """\
biases_only = lf.BiasedMF(1, init_std=1e-4, reg=100.0, reg_bias=0.02,
                          random_state=0).fit(train, valid=valid)
print(f"biases only: test MSE {biases_only.evaluate(test)['mse']:.3f}")""",
    ),
    (
        "md",
        """\
## A nonlinear head

With a ReLU between the layers the head can model interactions.
`MLPMF()`'s defaults use 32-dimensional vectors, two hidden layers (64 and
32 units), L2 on everything and early stopping. The embeddings learn by SGD,
as in `BiasedMF`, while the head learns by Adam with a small step: it
changes slowly, and the embeddings learn to use it.""",
    ),
    (
        "code",
        """\
import time

rows = []
for label, model in [("notebook MLP (linear head)", keras_like),
                     ("biases only", biases_only)]:
    rows.append({"model": label, **model.evaluate(test)})
for label, model in [("MLPMF() defaults", lf.MLPMF(random_state=0)),
                     ("BiasedMF() defaults", lf.BiasedMF(random_state=0))]:
    start = time.perf_counter()
    model.fit(train, valid=valid)
    rows.append({"model": label, **model.evaluate(test), "fit s": time.perf_counter() - start})
    if label.startswith("MLPMF"):
        mlp = model
pd.DataFrame(rows).set_index("model")""",
    ),
    (
        "code",
        """\
diff = mlp.predict(users, np.full(len(users), i)) - mlp.predict(users, np.full(len(users), j))
print(f"ReLU head: p(u, Toy Story) - p(u, Matrix) spread over users {diff.std():.3f}, "
      f"mean {diff.mean():.3f}; users who prefer Toy Story: {(diff > 0).sum()} of {len(diff)}")""",
    ),
    (
        "md",
        """\
The ReLU head beats the notebook's model by a wide margin, and the gap
between two films now differs from user to user, where the linear head
gave every user the same gap. The differences are small, though: for this
pair, every one of these users still prefers the same film. It does not beat a
well-regularised dot product: published work (Rendle et al. 2020,
*Neural Collaborative Filtering vs. Matrix Factorization Revisited*) finds
the same. A dot product is a very good inductive bias for ratings, and an
MLP has to learn to approximate it from data.

## Where the MLP is needed: a planted interaction

On synthetic data we can plant an interaction that no additive model can
express: users of one kind love items of one kind and dislike the rest.
The linear head cannot learn it; the ReLU head can.""",
    ),
    (
        "code",
        """\
rng = np.random.default_rng(0)
n_users, n_items = 300, 200
user_kind = rng.integers(0, 2, n_users)
item_kind = rng.integers(0, 2, n_items)
pairs = rng.choice(n_users * n_items, 30_000, replace=False)
u, it = pairs // n_items, pairs % n_items
r = 3.0 + np.where(user_kind[u] == item_kind[it], 1.0, -1.0) + rng.normal(0, 0.3, len(u))
planted = pd.DataFrame({"user": u, "item": it, "rating": r})
ptrain, pvalid, ptest = lf.random_split(planted, random_state=0)
for act in ("linear", "relu"):
    model = lf.MLPMF(8, hidden=(16,), activation=act, random_state=0).fit(ptrain, valid=pvalid)
    print(f"{act:>6} head: test MSE {model.evaluate(ptest)['mse']:.3f} "
          f"(noise floor {0.3 ** 2:.3f}; predicting the mean: {ptest.rating.var():.3f})")""",
    ),
]


NOTEBOOKS["03_recommending"] = [
    (
        "md",
        """\
# Recommending

Predicting a rating is a means; what people want from a recommender is a
short list of things to try next. This notebook fits a model on MovieLens
and uses it the way an application would: top-N lists with titles, similar
movies, a brand-new user folded in from a handful of ratings without
refitting, ranking metrics against a popularity baseline, and a map of the
movie vectors.""",
    ),
    ("code", SETUP),
    (
        "code",
        """\
ratings = lf.load_movielens("ml-latest-small")
movies = lf.load_movielens_items("ml-latest-small")
train, test = lf.user_holdout_split(ratings, 0.2, random_state=0)
model = lf.BiasedMF(random_state=0).fit(train)
print(f"{len(train):,} training ratings, {len(test):,} held out; test RMSE "
      f"{model.evaluate(test)['rmse']:.3f}")""",
    ),
    (
        "md",
        """\
## Top-N for one user

`recommend` scores every movie for the user, drops the ones they already
rated, and returns the best `n`. `titles=` joins the movie titles.""",
    ),
    (
        "code",
        """\
user = 1
seen = train[train.user == user].merge(movies, on="item")
print("user 1 liked:", ", ".join(seen.nlargest(5, "rating").title))
model.recommend(user, 10, titles=movies)""",
    ),
    (
        "md",
        """\
A model trained only to predict ratings favours movies that few people
rated, but highly. A small **popularity prior** (`popularity_weight`) adds
`w * ln(1 + number of ratings)` to the score and brings in films the user is
more likely to have heard of:""",
    ),
    ("code", "model.recommend(user, 10, popularity_weight=1.0, titles=movies)"),
    (
        "md",
        """\
## Similar movies

Movies with similar latent vectors (cosine similarity) are liked by similar
people. Here are the neighbours of *Toy Story* (item 1):""",
    ),
    ("code", "model.similar_items(1, 8, titles=movies)"),
    (
        "md",
        """\
A vector is only as good as the ratings behind it: a movie rated twice has
a vector that is mostly its random start, and can land next to anything.
Keeping neighbours with enough ratings gives a cleaner list, here for
*The Matrix* (item 2571):""",
    ),
    (
        "code",
        """\
counts = train.item.value_counts()
near = model.similar_items(2571, 200, titles=movies)
near[near.item.map(counts).fillna(0) >= 30].head(8)""",
    ),
    (
        "md",
        """\
## A new user, without refitting

A user who was not in the training data has no vector. `fold_in` solves
for one in closed form, keeping every movie vector fixed: the same
regularised least-squares problem training solves for each user. It takes
milliseconds and leaves the model untouched.""",
    ),
    (
        "code",
        """\
new_user = pd.DataFrame({
    "item": [1, 2355, 4886, 6377, 8961, 2571, 1200],   # Pixar films; The Matrix; Aliens
    "rating": [5.0, 4.5, 5.0, 5.0, 4.5, 2.0, 1.5],
})
print(new_user.merge(movies, on="item")[["title", "rating"]].to_string(index=False))
model.recommend_for(new_user, 10, popularity_weight=1.0, titles=movies)""",
    ),
    (
        "md",
        """\
## Ranking metrics

For every test user, we recommend 10 movies they did not rate in training
and count how many they rated 4 or more in the held-out part: precision@10,
recall@10, NDCG@10 (which rewards hits near the top), MAP@10, the hit rate
and the share of the catalogue that appears in some list. The baseline
recommends the most-rated movies to everyone.""",
    ),
    (
        "code",
        """\
from latentfactors.metrics import evaluate_ranking

rows = {
    "popularity": evaluate_ranking("popularity", train, test, k=10),
    "BiasedMF": evaluate_ranking(model, train, test, k=10),
}
ranker = lf.BiasedMF(center=False, random_state=0).fit(train)
rows["BiasedMF center=False + prior"] = evaluate_ranking(ranker, train, test, k=10,
                                                         popularity_weight=1.0)
pd.DataFrame(rows).T""",
    ),
    (
        "md",
        """\
The honest picture: a rating model used raw loses to popularity on this
data, because the held-out movies a user rated are mostly popular ones.
Ranked with the popularity prior it beats the baseline. Models trained for
ranking directly (on implicit feedback) are a different family.

## A map of movie vectors

The movie vectors live in many dimensions; their two main directions
(principal components) give a picture. Nearby movies are liked by the same
people.""",
    ),
    (
        "code",
        """\
top = counts.index[:400]
codes = model.item_index_.encode(top)
vectors = model.item_factors_[codes].astype(np.float64)
vectors -= vectors.mean(axis=0)
_, _, axes = np.linalg.svd(vectors, full_matrices=False)
xy = vectors @ axes[:2].T
titles = movies.set_index("item").title
fig, ax = plt.subplots(figsize=(8, 6))
ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.4)
ends = np.concatenate([np.argsort(xy[:, 0])[[0, 1, 2, 3, -4, -3, -2, -1]],
                       np.argsort(xy[:, 1])[[0, 1, 2, -3, -2, -1]]])
for idx in ends:
    ax.annotate(titles.get(top[idx], str(top[idx]))[:30], xy[idx], fontsize=7)
ax.set_title("400 most-rated movies, first two principal components of their vectors");""",
    ),
]


NOTEBOOKS["05_bayesian"] = [
    (
        "md",
        """\
# Sampling instead of SGD: `BayesianMF`

`BiasedMF` finds *one* set of factors by SGD, and how well that set
generalises rests on hand-set knobs: the L2 penalty, the learning rate, the
number of epochs. Tuned on one dataset, they do not carry to the next.

`BayesianMF` treats the factors as unknowns with a distribution. A Gibbs
sampler draws, sweep after sweep, every bias and every factor from its
distribution given all the others and the ratings, and it draws the
regularisation too: each group (users, items, ...) has a prior whose mean and
precision are themselves sampled from hyperpriors. The prediction averages
the predictions of many draws. Nothing is left to tune but the rank and the
number of sweeps, and every prediction comes with its uncertainty.""",
    ),
    ("code", SETUP),
    (
        "code",
        """\
name, ratings = load_notebook_data()
train, valid, test = lf.random_split(ratings, random_state=0)
sgd = lf.BiasedMF(random_state=0).fit(train, valid=valid)
bayes = lf.BayesianMF(random_state=0).fit(train)
pd.DataFrame(
    {"test MSE": [sgd.evaluate(test)["mse"], bayes.evaluate(test)["mse"]],
     "needs": ["valid set for early stopping, tuned reg and lr", "nothing"]},
    index=["BiasedMF (SGD)", "BayesianMF (200 Gibbs sweeps)"],
)""",
    ),
    (
        "md",
        """\
## More features: what the user rated, and when

A factorization machine can take more than a user and an item. With
`implicit=True` each rating also holds *the set of items its user rated*
and *the set of users who rated its item*, each member with a vector of its
own (SVD++'s idea: which movies you chose to rate says something about you,
whatever the ratings). With `time="day"` the calendar day of the rating is a
feature too: people rate in sessions, and a session has a mood.""",
    ),
    (
        "code",
        """\
import time

rows = {}
for label, params in [("users + items", {}), ("+ implicit", {"implicit": True}),
                      ("+ implicit + day", {"implicit": True, "time": "day"})]:
    start = time.perf_counter()
    model = lf.BayesianMF(random_state=0, **params).fit(train)
    rows[label] = {"test MSE": model.evaluate(test)["mse"],
                   "fit s": time.perf_counter() - start}
full = model  # the implicit + day model, used below
pd.DataFrame(rows).T""",
    ),
    (
        "md",
        """\
## What the hyperpriors learned

Each sweep draws every group's prior precision (the inverse variance its
biases and each factor dimension are pulled towards the group mean with):
the regularisation, learned from the data. `sample_precision_` keeps them
for the kept sweeps, per group, for the bias and each factor. A large
precision means a tight prior: the data say little about that group's
members, so they stay close together.""",
    ),
    (
        "code",
        """\
precision = full.sample_precision_  # (kept sweeps, groups, 1 + factors)
fig, axes = plt.subplots(1, 2, sharey=True)
where = np.arange(len(full.group_names_))
for ax, part, title in [(axes[0], precision[:, :, 0], "biases"),
                        (axes[1], precision[:, :, 1:].mean(axis=2), "factors (mean over dims)")]:
    low, mid, high = np.percentile(part, [10, 50, 90], axis=0)
    ax.errorbar(mid, where, xerr=[mid - low, high - mid], fmt="o", capsize=3)
    ax.set_xscale("log")
    ax.set_title(f"prior precision, {title}", fontsize=10)
axes[0].set_yticks(where, full.group_names_)
fig.tight_layout()""",
    ),
    (
        "md",
        """\
## How sure is a prediction?

`predict(..., return_std=True)` gives the predictive standard deviation: the
spread of the kept samples' predictions plus the noise the model learned. If
it is calibrated, about 90% of the test ratings fall within 1.645 standard
deviations of the predicted mean, and items with fewer ratings get wider
intervals. The exception is an item the training data never had: it is
scored without a vector of its own, so nothing of it varies between samples
and its spread is only the noise and the user's part. The model does not
know how little it knows there; a prior draw for unseen items would.""",
    ),
    (
        "code",
        """\
mean, std = full.predict(test, return_std=True)
error = test.rating.to_numpy() - mean
print(f"share of test ratings within 1.645 sd: {np.mean(np.abs(error) < 1.645 * std):.3f}")
counts = train.item.value_counts()
n_item = test.item.map(counts).fillna(0).to_numpy()
bins = pd.cut(n_item, [-1, 0, 5, 20, 80, 400], labels=["0", "1-5", "6-20", "21-80", "81+"])
fig, ax = plt.subplots()
pd.Series(std).groupby(bins, observed=True).mean().plot.bar(ax=ax, rot=0)
ax.set_xlabel("training ratings of the item"); ax.set_ylabel("mean predictive sd");""",
    ),
    (
        "md",
        """\
A few recommendations with their uncertainty: for a user, the top movies by
the posterior mean, and how sure the model is of each score (the noise of
a single rating is most of it).""",
    ),
    (
        "code",
        """\
movies = lf.load_movielens_items(name)
user = 15
top = full.recommend(user, 6, titles=movies)
_, sd = full.predict(np.full(len(top), user), top.item.to_numpy(), return_std=True)
top.assign(sd=sd)""",
    ),
]


def build(name, cells):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    print(f"{path.name}: executed in {time.perf_counter() - start:.0f}s")


def main(argv):
    chosen = [n for n in NOTEBOOKS if not argv or any(n.startswith(a) for a in argv)]
    for name in chosen:
        build(name, NOTEBOOKS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
