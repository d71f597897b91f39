"""Generates MovieLens-shaped ratings from a latent-factor model, as the default sample.

MovieLens' terms forbid redistributing its files, so the project ships data made here:
`userId,movieId,rating,timestamp` rows whose ratings come from user and item biases
plus a dot product of latent factors, with Zipf-skewed user activity and item
popularity. A ranker therefore has real signal to learn, and a long tail to struggle
with, as on the real data.

    python data/generate_sample.py --side-columns        # rewrites data/sample/ratings.csv
    python data/generate_sample.py --rows 1000000 --users 6040 --items 3706 \
        --out /tmp/ml1m-like/ratings.csv.gz               # MovieLens-1M scale

With `--side-columns` (as the shipped sample is made) each row also carries its user's
`gender`, `age` and `occupation` and its movie's `year` (empty for 5% of movies: a
missing value) and `genres` (`Action|Comedy`), MovieLens' side columns. They are drawn
from the same latent factors as the ratings (occupation and genres from the factors'
directions, age and gender from single factors, year from the movie's bias), so they
tell a model something about a user or movie it has few ratings of; the ratings
themselves are the same with or without them.

The output depends only on the arguments: the same seed gives the same bytes.
"""

import argparse
import csv
import gzip
import io
import os
import sys

import numpy as np

HEADER = ('userId', 'movieId', 'rating', 'timestamp')
SIDE_HEADER = ('gender', 'age', 'occupation', 'year', 'genres')
GENRES = ('Action', 'Adventure', 'Animation', 'Comedy', 'Documentary', 'Drama', 'Horror',
          'Romance', 'Sci-Fi', 'Thriller')
OCCUPATIONS = ('artist', 'doctor', 'educator', 'engineer', 'other', 'retired', 'student',
               'writer')
_DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'sample', 'ratings.csv')
_FIRST_TIMESTAMP = 1_500_000_000  # mid-2017, in the range of MovieLens latest.


def _zipf_weights(count: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
  # Shuffled so that popularity is not simply the id order.
  weights = 1.0 / np.arange(1, count + 1) ** exponent
  return rng.permutation(weights / weights.sum())


def _side_columns(user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray,
                  seed: int):
  """(gender, age, occupation) per user and (year, genres) per item, drawn from their
  latent factors with an RNG of their own (the ratings' draws stay as they were)."""
  rng = np.random.default_rng(seed + 1)
  users, factors = user_factors.shape
  items = item_factors.shape[0]
  gender = np.where(user_factors[:, 1 % factors] + rng.normal(0, 0.5, users) > 0, 'F', 'M')
  age = np.clip(np.round(34 + 9 * user_factors[:, 0] + rng.normal(0, 5, users)), 16, 75)
  directions = rng.normal(0, 1, (len(OCCUPATIONS), factors))
  occupation = np.array(OCCUPATIONS)[np.argmax(
      user_factors @ directions.T + rng.gumbel(0, 0.5, (users, len(OCCUPATIONS))), axis=1)]
  directions = rng.normal(0, 1, (len(GENRES), factors))
  affinity = item_factors @ directions.T + rng.normal(0, 0.5, (items, len(GENRES)))
  has = affinity > 1.2
  has[np.arange(items), affinity.argmax(axis=1)] = True  # every movie has a genre
  genres = np.array(['|'.join(g for g, h in zip(GENRES, row) if h) for row in has])
  year = np.clip(np.round(2000 - 12 * item_bias + rng.normal(0, 6, items)), 1930, 2020)
  year[rng.random(items) < 0.05] = 0  # unknown
  return (gender, age.astype(np.int64), occupation), (year.astype(np.int64), genres)


def generate(rows: int, users: int, items: int, factors: int, seed: int,
             side_columns: bool = False) -> np.ndarray:
  """Returns a record array of unique (user, item) ratings, by timestamp, with the
  SIDE_HEADER fields when asked (year 0: unknown)."""
  if rows > users * items // 2:
    raise ValueError(f'{rows} rows do not fit {users} users x {items} items sparsely; '
                     'ask for fewer rows or more users/items')
  rng = np.random.default_rng(seed)
  user_weights = _zipf_weights(users, 0.8, rng)
  item_weights = _zipf_weights(items, 1.0, rng)
  # MovieLens ids are sparse: item ids skip numbers, as movies are added and removed.
  user_ids = np.arange(1, users + 1)
  item_ids = np.sort(rng.choice(np.arange(1, items * 5), size=items, replace=False))

  user_bias = rng.normal(0.0, 0.45, users)
  # Popular items are rated a little higher, as in MovieLens.
  item_bias = rng.normal(0.0, 0.45, items) + 0.15 * np.log(item_weights * items)
  user_factors = rng.normal(0.0, 0.75, (users, factors))
  item_factors = rng.normal(0.0, 0.75, (items, factors))

  pairs = np.empty(0, dtype=np.int64)
  while pairs.size < rows:
    want = 2 * (rows - pairs.size) + 100
    u = rng.choice(users, size=want, p=user_weights)
    i = rng.choice(items, size=want, p=item_weights)
    candidates = np.concatenate([pairs, u.astype(np.int64) * items + i])
    _, first = np.unique(candidates, return_index=True)
    pairs = candidates[np.sort(first)]
  pairs = pairs[:rows]
  u, i = pairs // items, pairs % items

  score = (3.6 + user_bias[u] + item_bias[i]
           + np.einsum('nf,nf->n', user_factors[u], item_factors[i])
           + rng.normal(0.0, 0.6, rows))
  rating = np.clip(np.round(score * 2) / 2, 0.5, 5.0)
  timestamp = _FIRST_TIMESTAMP + np.sort(rng.integers(0, 3 * 365 * 86400, rows))
  fields = [('userId', 'i8'), ('movieId', 'i8'), ('rating', 'f8'), ('timestamp', 'i8')]
  if side_columns:
    fields += [('gender', 'U1'), ('age', 'i8'), ('occupation', 'U16'), ('year', 'i8'),
               ('genres', 'U128')]
  out = np.empty(rows, dtype=fields)
  out['userId'], out['movieId'] = user_ids[u], item_ids[i]
  out['rating'], out['timestamp'] = rating, timestamp
  if side_columns:
    (gender, age, occupation), (year, genres) = _side_columns(
        user_factors, item_factors, item_bias, seed)
    out['gender'], out['age'], out['occupation'] = gender[u], age[u], occupation[u]
    out['year'], out['genres'] = year[i], genres[i]
  return out


def write_csv(ratings: np.ndarray, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator='\n')
  sides = ratings.dtype.names[len(HEADER):]
  writer.writerow(HEADER + sides)
  for r in ratings:
    row = [int(r['userId']), int(r['movieId']), f'{r["rating"]:.1f}', int(r['timestamp'])]
    if sides:
      row += [r['gender'], int(r['age']), r['occupation'], int(r['year']) or '', r['genres']]
    writer.writerow(row)
  data = buffer.getvalue().encode('utf-8')
  if path.endswith('.gz'):
    # mtime=0 keeps the bytes a function of the arguments alone.
    data = gzip.compress(data, mtime=0)
  with open(path, 'wb') as f:
    f.write(data)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', default=_DEFAULT_OUT, help='CSV path; .gz compresses')
  parser.add_argument('--rows', type=int, default=6000)
  parser.add_argument('--users', type=int, default=300)
  parser.add_argument('--items', type=int, default=400)
  parser.add_argument('--factors', type=int, default=3)
  parser.add_argument('--seed', type=int, default=20241123)
  parser.add_argument('--side-columns', action='store_true',
                      help='add user and movie side columns (as the shipped sample has)')
  args = parser.parse_args(argv)
  try:
    ratings = generate(args.rows, args.users, args.items, args.factors, args.seed,
                       args.side_columns)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  write_csv(ratings, args.out)
  positive = float(np.mean(ratings['rating'] >= 4))
  print(f'wrote {len(ratings)} ratings to {args.out} '
        f'({positive:.1%} rated 4 or more)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
