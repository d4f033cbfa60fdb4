"""Package setup for failurebench_sim (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "failurebench_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["assets/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="FARM maintainers",
    maintainer_email="maintainers@farm-robotics.org",
    description=open("package.xml").read().split("<description>")[1].split("</description>")[0],
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "failurebench = failurebench_sim.cli:main",
            "sim_node = failurebench_sim.nodes.sim_node:main",
        ],
    },
)
