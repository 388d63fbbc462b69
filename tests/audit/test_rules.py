"""Each audit rule fires on snippets that have its problem, and stays quiet on near misses
written to look like them."""

from __future__ import annotations

from textwrap import dedent

import pytest

from mlwright.audit.core import Finding, Selection, check_source


def findings(code: str, path: str = "snippet.py") -> list[Finding]:
    return check_source(path, dedent(code), Selection())


def rules(code: str) -> set[str]:
    return {f.rule for f in findings(code)}


CASES: dict[str, tuple[list[str], list[str]]] = {
    "MLW101": (
        [
            "import numpy as np\nx = np.random.rand(3)\n",
            "import random\nrandom.shuffle(rows)\n",
            "from sklearn.ensemble import RandomForestClassifier\nm = RandomForestClassifier()\n",
            "from sklearn.model_selection import train_test_split\n"
            "a, b = train_test_split(X, test_size=0.2)\n",
            "from sklearn.model_selection import KFold\ncv = KFold(5, shuffle=True)\n",
            "import numpy as np\nrng = np.random.default_rng()\n",
            "import torch\nfrom torch import nn\nnet = nn.Linear(3, 1)\n"
            "loss = net(torch.zeros(1, 3)).sum()\nloss.backward()\n",
            "import torch\nloader = torch.utils.data.DataLoader(ds, shuffle=True)\n",
        ],
        [
            "import numpy as np\nnp.random.seed(cfg.seed)\nx = np.random.rand(3)\n",
            "import random\nrandom.seed(SEED)\nrandom.shuffle(rows)\n",
            "from sklearn.ensemble import RandomForestClassifier\n"
            "m = RandomForestClassifier(random_state=cfg.seed)\n",
            "from sklearn.ensemble import RandomForestClassifier\n"
            "m = RandomForestClassifier(**params)\n",
            "from sklearn.model_selection import KFold\ncv = KFold(5)\n",
            "import numpy as np\nrng = np.random.default_rng(cfg.seed)\n",
            "import torch\nfrom torch import nn\ntorch.manual_seed(cfg.seed)\n"
            "net = nn.Linear(3, 1)\nloss = net(torch.zeros(1, 3)).sum()\nloss.backward()\n",
            "import torch\nfrom torch import nn\nnet = nn.Linear(3, 1)\n",  # built, not trained
            "import torch\nloader = torch.utils.data.DataLoader(ds, shuffle=True, generator=g)\n",
        ],
    ),
    "MLW102": (
        [
            "from sklearn.linear_model import LogisticRegression\n"
            "m = LogisticRegression()\nm.fit(X, y)\n",
            "import torch\nfor xb, yb in loader:\n    loss = crit(net(xb), yb)\n"
            "    loss.backward()\n    opt.step()\n",
        ],
        [
            "from sklearn.model_selection import train_test_split\n"
            "X_tr, X_te, y_tr, y_te = train_test_split(X, y)\nm.fit(X_tr, y_tr)\n",
            "from sklearn.model_selection import cross_val_score\n"
            "print(cross_val_score(m, X, y))\nm.fit(X, y)\n",
            "m.fit(X, y, eval_set=[(Xv, yv)])\n",
            "for xb, yb in train_loader:\n    loss = crit(net(xb), yb)\n    loss.backward()\n"
            "for xb, yb in val_loader:\n    score(net(xb), yb)\n",
            "scaler.fit(X)\n",  # a preprocessor fitted alone is not a trained model
        ],
    ),
    "MLW103": (
        [
            "from sklearn.preprocessing import StandardScaler\n"
            "from sklearn.model_selection import train_test_split\n"
            "scaler = StandardScaler()\nXs = scaler.fit_transform(X)\n"
            "a, b, c, d = train_test_split(Xs, y, random_state=0)\n",
            "from sklearn.preprocessing import MinMaxScaler\n"
            "from sklearn.model_selection import train_test_split\n"
            "X = MinMaxScaler().fit_transform(X)\n"
            "a, b, c, d = train_test_split(X, y, random_state=0)\n",
            "from sklearn.impute import SimpleImputer\n"
            "from sklearn.model_selection import train_test_split\n"
            "def prepare(X, y):\n    imp = SimpleImputer()\n    imp.fit(X)\n"
            "    return train_test_split(X, y, random_state=0)\n",
        ],
        [
            "from sklearn.preprocessing import StandardScaler\n"
            "from sklearn.model_selection import train_test_split\n"
            "a, b, c, d = train_test_split(X, y, random_state=0)\n"
            "scaler = StandardScaler()\na = scaler.fit_transform(a)\nb = scaler.transform(b)\n",
            "from sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler\n"
            "from sklearn.model_selection import train_test_split\n"
            "a, b, c, d = train_test_split(X, y, random_state=0)\n"
            "pipe = make_pipeline(StandardScaler(), model)\npipe.fit(a, c)\n",
            "from sklearn.preprocessing import LabelEncoder\n"
            "from sklearn.model_selection import train_test_split\n"
            "labels = LabelEncoder()\ny = labels.fit_transform(y)\n"
            "a, b, c, d = train_test_split(X, y, random_state=0)\n",
            "from sklearn.preprocessing import StandardScaler\n"
            "from sklearn.model_selection import train_test_split\n"
            "scaler = StandardScaler()\nother = scaler.fit_transform(unrelated)\n"
            "a, b, c, d = train_test_split(X, y, random_state=0)\n",
        ],
    ),
    "MLW104": (
        ["X_tr, X_te = split(X)\nm.fit(X_tr, y_tr)\nprint(m.score(X_te, y_te))\n"],
        [
            "import mlflow\nwith mlflow.start_run():\n    m.fit(X_tr, y_tr)\n",
            "from torch.utils.tensorboard import SummaryWriter\nloss.backward()\n",
            "import wandb\nwandb.init()\nm.fit(X_tr, y_tr)\n",
            "m = load()\nprint(m.predict(X))\n",  # no training at all
        ],
    ),
    "MLW105": (
        [
            "from torch import nn\nrnn = nn.GRU(4, 16)\nloss.backward()\nopt.step()\n",
            "import torch\nlayer = torch.nn.TransformerEncoderLayer(64, 4)\nloss.backward()\n",
        ],
        [
            "from torch import nn\nrnn = nn.GRU(4, 16)\nloss.backward()\n"
            "nn.utils.clip_grad_norm_(rnn.parameters(), cfg.clip)\nopt.step()\n",
            "from torch import nn\nrnn = nn.LSTM(4, 16)\n",  # defined here, trained elsewhere
            "from torch import nn\nrnn = nn.GRU(4, 16)\nloss.backward()\n"
            "trainer = Trainer(gradient_clip_val=cfg.clip)\n",
            "from torch import nn\nlayer = nn.Linear(4, 16)\nloss.backward()\n",
        ],
    ),
    "MLW106": (
        [
            "import torch\nopt = torch.optim.Adam(net.parameters(), lr=0.001)\n",
            "import torch\nopt = torch.optim.SGD(net.parameters(), 0.1)\n",
            "from torch.utils.data import DataLoader\nloader = DataLoader(ds, batch_size=32)\n",
            "model.fit(X, y, epochs=10)\n",
            "from xgboost import XGBClassifier\nm = XGBClassifier(max_depth=6, eta=0.3)\n",
            "for epoch in range(50):\n    run()\n",
            "from torch import nn\nclass Net(nn.Module):\n    pass\nnet = Net(hidden=128)\n",
            "from torch import nn\ndrop = nn.Dropout(0.5)\n",
        ],
        [
            "import torch\nopt = torch.optim.Adam(net.parameters(), lr=cfg['lr'])\n",
            "from torch.utils.data import DataLoader\n"
            "loader = DataLoader(ds, batch_size=args.batch_size, num_workers=4)\n",
            "from sklearn.ensemble import RandomForestClassifier\n"
            "m = RandomForestClassifier(random_state=0, n_jobs=-1)\n",
            "for epoch in range(cfg.epochs):\n    run()\n",
            "for epoch in range(1, epochs + 1):\n    run()\n",
            "from torch import nn\nlayer = nn.Linear(128, 64)\n",
            "for i in range(10):\n    run()\n",
        ],
    ),
    "MLW107": (
        [
            "try:\n    load()\nexcept:\n    raise\n",
            "for f in files:\n    try:\n        rows.append(read(f))\n"
            "    except Exception:\n        continue\n",
            "try:\n    df = read()\nexcept Exception:\n    pass\n",
            "import pandas as pd\ndf['age'] = pd.to_numeric(df['age'], errors='coerce')\n",
            "import pandas as pd\nwhen = pd.to_datetime(raw, errors='ignore')\n",
        ],
        [
            "try:\n    load()\nexcept FileNotFoundError:\n    pass\n",
            "for f in files:\n    try:\n        rows.append(read(f))\n"
            "    except Exception as exc:\n        log.warning('skipped %s: %s', f, exc)\n"
            "        continue\n",
            "import pandas as pd\ndf['age'] = pd.to_numeric(df['age'], errors='coerce')\n"
            "assert df['age'].isna().mean() < 0.01\n",
            "import pandas as pd\nx = pd.to_numeric(raw, errors='coerce').fillna(0)\n",
            "import numpy as np, pandas as pd\nv = pd.to_numeric(raw, errors='coerce')\n"
            "bad = ~np.isfinite(v)\n",
            "import pandas as pd\nx = pd.to_numeric(raw, errors='raise')\n",
        ],
    ),
    "MLW108": (
        [
            "import torch\ntorch.save(model.state_dict(), 'model.pt')\n",
            "import joblib\njoblib.dump(clf, 'model.joblib')\n",
            "import pickle\npickle.dump(clf, open('model.pkl', 'wb'))\n",
            "booster.save_model('model.txt')\n",
        ],
        [
            "import torch\ntorch.save(model.state_dict(), f'models/{run_id}/model.pt')\n",
            "import joblib, mlflow\njoblib.dump(clf, 'model.joblib')\n"
            "mlflow.log_artifact('model.joblib')\n",
            "import torch\ntorch.save(state, 'checkpoints/last.pt')\n",
            "figure.save('plot.png')\n",
            "import torch\ntorch.save(model.state_dict(), path)\n",
        ],
    ),
    "MLW109": (
        [
            "import torch\ndef predict(model, x):\n    return model(x)\n",
            "import torch\nmodel.load_state_dict(torch.load('w.pt'))\nout = model(batch)\n",
            "import torch\nmodel.eval()\ndef evaluate(model, loader):\n"
            "    return [model(x) for x in loader]\n",  # eval() but no no_grad()
        ],
        [
            "import torch\ndef predict(model, x):\n    model.eval()\n    with torch.no_grad():\n"
            "        return model(x)\n",
            "import torch\nmodel.eval()\n@torch.inference_mode()\ndef predict(model, x):\n"
            "    return model(x)\n",
            "import torch\ndef train_step(model, x, y):\n    loss = crit(model(x), y)\n"
            "    loss.backward()\n",
            "import torch\ndef predict(x):\n    return make_model()(x)\n",
            "def predict(model, x):\n    return model(x)\n",  # not a torch file
        ],
    ),
}


@pytest.mark.parametrize(("rule", "code"), [(r, c) for r, (hits, _) in CASES.items() for c in hits])
def test_the_rule_fires(rule: str, code: str) -> None:
    assert rule in rules(code), code


@pytest.mark.parametrize(
    ("rule", "code"), [(r, c) for r, (_, misses) in CASES.items() for c in misses]
)
def test_the_near_miss_stays_quiet(rule: str, code: str) -> None:
    found = rules(code)
    assert "MLW000" not in found, "the snippet must parse, or it proves nothing"
    assert rule not in found, code


def test_every_rule_has_cases_and_findings_say_what_and_how() -> None:
    from mlwright.audit.core import RULES

    assert set(CASES) == set(RULES) - {"MLW000"}
    for rule, (hits, _) in CASES.items():
        found = next(f for f in findings(hits[0]) if f.rule == rule)
        assert found.message and found.fix and found.line >= 1 and found.col >= 1
        assert found.severity == RULES[rule].severity


def test_a_finding_points_at_the_line_and_column() -> None:
    found = findings("import numpy as np\n\nvalues = np.random.rand(3)\n")
    assert [(f.rule, f.line, f.col) for f in found] == [("MLW101", 3, 10)]


def test_suppression_by_id_or_name_on_the_line_or_the_comment_above() -> None:
    code = "import numpy as np\nx = np.random.rand(3)  # mlwright: ignore[MLW101]\n"
    assert rules(code) == set()
    code = "import numpy as np\nx = np.random.rand(3)  # mlwright: ignore[unseeded-random]\n"
    assert rules(code) == set()
    code = (
        "import numpy as np\n# mlwright: ignore[MLW106, MLW101] a fixed sample, on purpose\n"
        "x = np.random.rand(3)\n"
    )
    assert rules(code) == set()
    code = "import numpy as np\nx = np.random.rand(3)  # mlwright: ignore[MLW106]\n"
    assert rules(code) == {"MLW101"}  # another rule's id suppresses nothing here
    code = "import numpy as np\ny = 1  # mlwright: ignore[MLW101]\nx = np.random.rand(3)\n"
    assert rules(code) == {"MLW101"}  # a comment after code covers its own line only


def test_a_syntax_error_is_a_finding_not_a_crash() -> None:
    found = findings("def broken(:\n    pass\n")
    assert [(f.rule, f.severity, f.line) for f in found] == [("MLW000", "high", 1)]
    assert "does not parse" in found[0].message


def test_selection_and_severity_overrides() -> None:
    code = "import numpy as np\nx = np.random.rand(3)\nopt = Adam(lr=0.1)\nm.fit(X, y)\n"
    everything = {f.rule for f in check_source("a.py", code, Selection())}
    assert {"MLW101", "MLW102"} <= everything
    only = check_source("a.py", code, Selection(select=("MLW101",)))
    assert {f.rule for f in only} == {"MLW101"}
    ignored = check_source("a.py", code, Selection(ignore=("unseeded-random",)))
    assert "MLW101" not in {f.rule for f in ignored}
    raised = check_source("a.py", code, Selection(severity={"MLW101": "high"}))
    assert {f.severity for f in raised if f.rule == "MLW101"} == {"high"}
