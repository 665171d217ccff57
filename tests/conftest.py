pytest_plugins = ["tests.support.database", "tests.support.kafka", "tests.support.browser",
                  "tests.support.faults", "tests.support.breakdowns", "tests.support.dashboard"]
