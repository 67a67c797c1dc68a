import { createRoot } from "react-dom/client";
import { App } from "./app.js";
import "./styles.css";

// No StrictMode: its doubled effects would redeem a one-time handoff token twice.
const root = document.getElementById("root");
if (root !== null) createRoot(root).render(<App />);
