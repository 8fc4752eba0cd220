// The game's sounds, synthesized with the Web Audio API (no audio files): a turn begins, your
// turn, a correct guess (yours, or someone's), the time running out.
//
// Browsers let a page make sound only after the user has done something on it (a click, a
// key, a tap): the audio context is created at the first such gesture, and until then nothing
// plays. The mute toggle is remembered in localStorage, for every channel.

const MUTE_KEY = "aiotutorial.game.muted";
const GESTURES = ["pointerdown", "keydown", "touchstart"];
const VOLUME = 0.18;

/**
 * A sound: notes [frequency in Hz, start in s, length in s], and the oscillator's shape.
 * @typedef {{wave: OscillatorType, notes: [number, number, number][], volume?: number}} Sound
 */

/** @type {Record<string, Sound>} */
const SOUNDS = {
  turn: { wave: "sine", notes: [[523.25, 0, 0.16], [659.25, 0.14, 0.22]] },
  yourTurn: { wave: "triangle", notes: [[523.25, 0, 0.14], [659.25, 0.12, 0.14], [783.99, 0.24, 0.3]] },
  correct: { wave: "triangle", notes: [[659.25, 0, 0.12], [783.99, 0.1, 0.12], [1046.5, 0.2, 0.35]] },
  guessed: { wave: "sine", notes: [[880, 0, 0.18]] },
  tick: { wave: "square", notes: [[1200, 0, 0.05]], volume: 0.06 },
  timeUp: { wave: "sawtooth", notes: [[392, 0, 0.18], [261.63, 0.16, 0.35]], volume: 0.1 },
};

function readMuted() {
  try {
    return localStorage.getItem(MUTE_KEY) === "1";
  } catch {
    return false;
  }
}

export class Sounds {
  /** @param {HTMLButtonElement|null} button the mute toggle (aria-pressed) */
  constructor(button) {
    this.button = button;
    this.muted = readMuted();
    /** @type {AudioContext | null} */
    this.context = null;
    const unlock = () => {
      if (this.unlock()) {
        for (const type of GESTURES) document.removeEventListener(type, unlock, true);
      }
    };
    for (const type of GESTURES) document.addEventListener(type, unlock, true);
    button?.addEventListener("click", () => this.setMuted(!this.muted));
    this.render();
  }

  /** A user gesture: the page may make sound from now on. True once it can. */
  unlock() {
    if (this.muted) return false; // not needed yet; the gesture that unmutes comes back here
    if (!this.context) {
      const Context =
        window.AudioContext ||
        /** @type {{webkitAudioContext?: typeof AudioContext}} */ (window).webkitAudioContext;
      if (!Context) return true;
      this.context = new Context();
    }
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
    return true;
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.muted = muted;
    try {
      if (muted) localStorage.setItem(MUTE_KEY, "1");
      else localStorage.removeItem(MUTE_KEY);
    } catch {
      // Not remembered: it lasts as long as the page.
    }
    if (!muted) this.unlock(); // the click on the toggle is a gesture
    this.render();
  }

  render() {
    if (!this.button) return;
    this.button.setAttribute("aria-pressed", String(this.muted));
    this.button.title = this.muted ? "Sounds are off: turn them on" : "Mute the game's sounds";
  }

  /**
   * Play ``name`` (one of SOUNDS) unless muted, or before the page may make sound.
   * @param {string} name
   */
  play(name) {
    const sound = SOUNDS[name];
    const context = this.context;
    if (this.muted || !sound || !context || context.state === "closed") return;
    const start = context.currentTime + 0.01;
    const peak = sound.volume ?? VOLUME;
    for (const [frequency, at, length] of sound.notes) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = sound.wave;
      oscillator.frequency.setValueAtTime(frequency, start + at);
      gain.gain.setValueAtTime(0.0001, start + at);
      gain.gain.exponentialRampToValueAtTime(peak, start + at + 0.015);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + at + length);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(start + at);
      oscillator.stop(start + at + length + 0.02);
    }
  }
}
