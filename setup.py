"""Installs the pipeline and its modules so every TFX executor (local or in the Vertex
image) imports them by dotted path, e.g. `modules.transform.preprocessing.preprocessing_fn`."""

import setuptools

setuptools.setup(
    name='tfx-embedding-ranker',
    version='0.1.0',
    description='Reference TFX pipeline for embedding-based recommender ranking models',
    python_requires='>=3.10,<3.11',
    license='Apache-2.0',
    packages=setuptools.find_packages(include=[
        f'{package}{suffix}' for package in ('contract', 'modules', 'pipeline', 'inspection')
        for suffix in ('', '.*')]),
    # Exact versions live in constraints.txt; these are the ranges the code supports.
    install_requires=[
        'tfx[kfp]>=1.16,<1.17',
        'tensorflow>=2.16,<2.17',
        'tf-keras>=2.16,<2.17',
        'tensorflow-recommenders>=0.7.7,<0.8',
        'apache-beam[gcp]>=2.59,<2.60',
        'PyYAML>=6',
        'pydantic>=2.14,<3',
    ],
    extras_require={'test': ['pytest']},
    entry_points={'console_scripts': ['ranker-inspect = inspection.cli:main']},
)
